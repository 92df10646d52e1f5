#!/bin/sh
# Prints the package version for the build version $1 (what `git describe
# --tags --always --dirty` printed, or what VERSION was set to), in a form both
# dpkg and rpm accept and order the way releases are made:
#
#   v1.2.3                  1.2.3
#   v1.2.3-4-gabc1234       1.2.3+git4.gabc1234     after 1.2.3, before 1.2.4
#   v1.2.3-dirty            1.2.3+dirty
#   v1.2.3-rc1              1.2.3~rc1               before 1.2.3
#   abc1234 (no tag yet)    0.0.0~git20261127221544.abc1234
#   dev (a name, no tag)    0.0.0~dev
#
# Untagged builds sort below any release (~) and by commit time among
# themselves, so a later build upgrades an earlier one. Characters neither
# format allows become dots.
set -eu
v=${1:-}
v=${v#v}
case $v in
[0-9]*.*)
	# v1.2.3-4-gabc1234[-dirty]: commits since the tag become +gitN.gHASH;
	# v1.2.3-rc1: a pre-release sorts before its release.
	v=$(printf '%s\n' "$v" | sed -E 's/-([0-9]+)-(g[0-9a-f]+)/+git\1.\2/; s/-dirty$/+dirty/; s/-(rc|alpha|beta|pre)/~\1/')
	;;
*)
	# No tag: a bare commit hash, perhaps -dirty, or a name like "dev".
	hash=$(printf '%s\n' "$v" | sed -nE 's/^([0-9a-f]{7,40})(-dirty)?$/\1/p')
	when=
	if [ -n "$hash" ]; then
		when=$(git log -1 --format=%cd --date=format:%Y%m%d%H%M%S "$hash" 2>/dev/null || true)
	fi
	if [ -n "$when" ]; then
		v="0.0.0~git$when.$v"
	else
		v="0.0.0~${v:-unknown}"
	fi
	v=$(printf '%s\n' "$v" | sed -E 's/-dirty$/.dirty/')
	;;
esac
# dpkg: [A-Za-z0-9.+~] after a leading digit (no "-": no Debian revision;
# no ":": no epoch). rpm forbids "-" in a version as well.
printf '%s\n' "$v" | sed -E 's/[^A-Za-z0-9.+~]/./g'
