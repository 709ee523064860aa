"""Side-by-side cross-entropy benchmark; the same as ``xce bench`` (see xce/_bench/).

python benchmarks/bench.py --plot benchmarks/results/bench.png
"""

import sys

from xce._bench import main

if __name__ == "__main__":
    sys.exit(main(prog="python benchmarks/bench.py"))
