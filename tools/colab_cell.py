# On Colab: clone taylorlib, install it with its `notebooks` extra and work in its book/
# folder, where the chapters' data/ is. Anywhere else this cell does nothing.
import sys

if "google.colab" in sys.modules:
    import importlib
    import os
    import subprocess

    REPO_URL = "https://github.com/taylorlib/taylorlib"
    clone = os.path.expanduser("~/taylorlib")
    if not os.path.isdir(clone):
        subprocess.run(["git", "clone", "-q", "--depth=1", REPO_URL, clone], check=True)
    pip = [sys.executable, "-m", "pip", "install", "-q", f"{clone}[notebooks]"]
    subprocess.run(pip, check=True)
    importlib.invalidate_caches()
    os.chdir(os.path.join(clone, "book"))
