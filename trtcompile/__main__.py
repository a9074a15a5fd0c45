"""python -m trtcompile"""

from trtcompile.cli import main

main()
