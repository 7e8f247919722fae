from orsync.cli import main

main()
