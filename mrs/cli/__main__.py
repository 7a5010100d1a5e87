"""
Run the C{mrs} command line as C{python -m mrs.cli}.
"""

from mrs.cli import main

main()
