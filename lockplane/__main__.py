from lockplane.cli import main

main()
