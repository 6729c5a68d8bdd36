#!/usr/bin/env bash
# Assembles the PDF corpus of evals/docs.jsonl in the folder given (default target/docs-corpus):
# the manuals Debian's asymptote-doc and gnuplot-doc install. Installs the packages when they are
# missing (non-interactive; with sudo when not root).
set -euo pipefail
out="${1:-target/docs-corpus}"
need=()
for pkg in asymptote-doc gnuplot-doc; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
mkdir -p "$out"
for pdf in /usr/share/doc/asymptote/asymptote.pdf /usr/share/doc/asymptote/CAD.pdf \
  /usr/share/doc/asymptote/asy-latex.pdf /usr/share/doc/gnuplot/gnuplot.pdf; do
  # Copied only when changed, so the corpus's index stays current between runs.
  cmp -s "$pdf" "$out/$(basename "$pdf")" || cp "$pdf" "$out/"
done
