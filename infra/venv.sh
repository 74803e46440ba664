# Sourced: `venv_for REQUIREMENTS LINK` makes LINK (e.g. .venv) a virtualenv holding exactly
# REQUIREMENTS. The environment itself lives in the user's cache, named after the file's
# hash, so a second clone (CI's, on the same machine) reuses it instead of installing again;
# on a new machine it is installed, once. A half-made one (a failed install) is made again.
venv_for() {
  local requirements=$1 link=$2 hash cache dir
  hash=$(sha256sum "$requirements" | cut -c1-16)
  cache="${XDG_CACHE_HOME:-${HOME:-$(dirname "$link")}/.cache}/picasso"
  dir="$cache/$(basename "$link" | tr -d .)-$hash"
  mkdir -p "$cache"
  (
    flock 9
    if [ ! -f "$dir/.installed" ]; then
      echo "setup: installing $(basename "$requirements") into $dir" >&2
      rm -rf "$dir"
      python3 -m venv "$dir"
      "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" \
        || { echo "setup: pip install failed; PyPI must be reachable" >&2; rm -rf "$dir"; exit 1; }
      touch "$dir/.installed"
    fi
  ) 9>"$cache/.lock"
  if [ "$(readlink "$link" 2>/dev/null)" != "$dir" ]; then
    rm -rf "$link"
    ln -s "$dir" "$link"
  fi
}
