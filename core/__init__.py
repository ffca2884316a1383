"""The base of Firstline: settings, errors, the category taxonomy and YAML loading. Imports nothing of ours."""
