#!/usr/bin/env bash
# Runs the ```sh blocks of one section of a Markdown document, in order, as one script: how CI
# tries docs/deployment.md the way a new user would (copying the commands, nothing else).
#   packaging/run-doc-section.sh DOC "HEADING"          run them
#   packaging/run-doc-section.sh --print DOC "HEADING"  only print the script
# The section runs from the heading to the next heading of the same or a higher level. Variables
# the document tells the user to set (their cloud's coordinates) come from the environment.
set -euo pipefail

print_only=0
if [[ ${1:-} == --print ]]; then print_only=1; shift; fi
doc=${1:?usage: $0 [--print] DOC HEADING}
heading=${2:?usage: $0 [--print] DOC HEADING}

script=$(awk -v want="$heading" '
  /^#+ / {
    level = index($0, " ") - 1
    title = substr($0, level + 2)
    if (inside && level <= start_level) inside = 0
    if (title == want) { inside = 1; start_level = level; found = 1 }
    next
  }
  inside && /^```sh[[:space:]]*$/ { block = 1; next }
  block && /^```[[:space:]]*$/ { block = 0; print ""; next }
  block { print }
  END { if (!found) exit 3 }
' "$doc") || { echo "run-doc-section: no section \"$heading\" in $doc" >&2; exit 2; }

if [[ -z ${script//[[:space:]]/} ]]; then
  echo "run-doc-section: section \"$heading\" of $doc has no sh blocks" >&2
  exit 2
fi
if ((print_only)); then
  printf '%s\n' "$script"
  exit 0
fi
echo "run-doc-section: running \"$heading\" of $doc" >&2
bash -euo pipefail -x -c "$script"
