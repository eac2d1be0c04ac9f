from kbuilder.cli import main

main()
