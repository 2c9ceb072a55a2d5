from distillgen.cli import run

run()
