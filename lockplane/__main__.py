from lockplane.launch import main

main()
