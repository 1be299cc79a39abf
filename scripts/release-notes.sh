#!/usr/bin/env bash
# Prints the CHANGELOG.md section of one version, for the release workflow's notes:
#   scripts/release-notes.sh 0.2.0 [CHANGELOG.md]
# The section is `## [0.2.0] - YYYY-MM-DD` up to the next `## ` heading. A version without a
# section, or whose section is not dated yet (`## [0.2.0] - unreleased`), is an error: a
# release is cut only after its changelog entry is final (docs/install.md, "Cutting a release").
set -euo pipefail
version="${1:?usage: release-notes.sh VERSION [CHANGELOG]}"
changelog="${2:-$(dirname "$0")/../CHANGELOG.md}"
awk -v version="$version" -v want="## [$version] - " '
  index($0, want) == 1 {
    date = substr($0, length(want) + 1)
    if (date !~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]$/) {
      printf "CHANGELOG.md: the section of %s is dated \"%s\", not YYYY-MM-DD\n", version, date > "/dev/stderr"
      bad = 1; exit
    }
    found = 1; next
  }
  found && /^## / { exit }
  found { print }
  END {
    if (bad) exit 1
    if (!found) { printf "CHANGELOG.md has no section \"%sYYYY-MM-DD\"\n", want > "/dev/stderr"; exit 1 }
  }
' "$changelog"
