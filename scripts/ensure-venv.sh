#!/usr/bin/env bash
# Create .venv with a Python >= 3.12 found on this machine and install polygvc into it.
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.polygvc-installed"

find_python() {
  local candidates=(python3.13 python3.12 python3)
  local c
  for c in "${candidates[@]}"; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$c"; return 0
    fi
  done
  local pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
  for c in "$pyenv_root"/versions/3.1[2-9]*/bin/python3 "$pyenv_root"/versions/3.[2-9][0-9]*/bin/python3; do
    if [ -x "$c" ] && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      echo "$c"; return 0
    fi
  done
  return 1
}

if [ ! -x "$venv/bin/python" ]; then
  py="$(find_python)" || {
    echo "polygvc needs Python >= 3.12 and found none (tried python3.13, python3.12, python3 and pyenv versions). Install one, e.g. 'pyenv install 3.12', and run this again." >&2
    exit 2
  }
  echo "Creating $venv with $py ($("$py" --version 2>&1))" >&2
  "$py" -m venv "$venv"
fi

want="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "Installing polygvc and its dependencies into $venv (first time: about 1-2 minutes)" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet -e "$root[test]" >&2
  echo "$want" > "$stamp"
fi
