from distillgen.cli import main

main()
