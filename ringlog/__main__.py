from ringlog.cli import main

main()
