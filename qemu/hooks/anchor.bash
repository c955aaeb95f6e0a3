# Sourced by the hooks (not a hook itself: build.sh runs *.sh and *.patch).
# Set HOOK to the hook's file name first, for the messages.

fail() { echo "$HOOK: $*" >&2; exit 1; }

# at FILE SIGNATURE ANCHOR before|after|instead TEXT: TEXT before, after
# or instead of the first whole line ANCHOR inside the function whose
# definition starts with the whole line SIGNATURE (up to the line "}" that
# closes it); with an empty SIGNATURE, the first ANCHOR in FILE
at() {
    SIG=$2 ANCHOR=$3 WHERE=$4 TEXT=$5 awk '
        BEGIN { inside = ENVIRON["SIG"] == "" }
        !done && $0 == ENVIRON["SIG"] { inside = 1 }
        !done && inside && $0 == ENVIRON["ANCHOR"] {
            if (ENVIRON["WHERE"] != "after") { print ENVIRON["TEXT"] }
            if (ENVIRON["WHERE"] != "instead") { print }
            if (ENVIRON["WHERE"] == "after") { print ENVIRON["TEXT"] }
            done = 1; next
        }
        inside && ENVIRON["SIG"] != "" && $0 == "}" { inside = 0 }
        { print }
        END { if (!done) exit 1 }' "$1" >"$1.sel4tmp" ||
        fail "$1: anchor not found${2:+ in $2}: $3"
    mv "$1.sel4tmp" "$1"
}
