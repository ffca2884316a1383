"""The `firstline` command: the outermost layer, which starts everything else."""
