"""``python -m data_recipes.synthetic --out DIR --preset tiny|demo|full|full_tiny``: runs ``build.main``.

Owns: nothing but the entry point. Must not: hold logic (it lives in ``build.py``).
"""

import sys

from data_recipes.synthetic.build import main

if __name__ == "__main__":
    sys.exit(main())
