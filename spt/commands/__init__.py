"""One module per pipeline step: its argument parser and `main(argv)`, called by the thin entry
scripts in scripts/ and training/ and by the `spt` command."""
