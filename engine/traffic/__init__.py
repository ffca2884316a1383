"""Simulated traffic (`firstline simulate`): users, faults and deciders driven through the real parts in simulated
time, so the success metrics are filled by the product itself. It sits above every other room and may import any
of them: it drives the chat, the desk, the monitor and the simulated infrastructure of parts its caller builds
(with `engine.wiring.build`, passed in: the wiring stays the one composition root). Only the command line imports
it."""
