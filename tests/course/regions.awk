# regions.awk — reads the assignment markers of the course kit (issue 14) and writes the stubs.
#
# A marked region is the body of one function, between two comment lines:
#     // ASSIGNMENT 4 BEGIN top2_select_forward
#     ...the reference body...
#     // ASSIGNMENT 4 END
# A CUDA kernel cannot throw, so its region says so with a trailing "device"; in a student copy it
# becomes an empty body and the host launcher (a region of its own) throws instead.
#
# Modes (-v mode=...):
#   check   print nothing; exit 1 after naming every malformed marker (file:line and the fix)
#   list    one line per region: "N <tab> file <tab> begin line <tab> name <tab> host|device"
#   stub    the file with every region of assignment `n` (-v n=4) replaced by its stub, which
#           names the handout (-v handout=...); the marker lines stay, so the student sees where
#           the code goes
# Every mode checks the markers as it reads, and exits 1 on a bad one, so the caller never keeps
# a half-stubbed file.
#
# POSIX awk only (mawk, gawk and busybox awk all run it): no Python in the build path.

function fail(msg) {
  printf "%s:%d: %s\n", FILENAME, FNR, msg > "/dev/stderr"
  bad = 1
}

function unclosed(file) {
  printf "%s: ASSIGNMENT %s BEGIN (line %d) has no END. HINT: close it with " \
    "'// ASSIGNMENT %s END'\n", file, open_num, open_line, open_num > "/dev/stderr"
  bad = 1
  open = 0
}

# The stub body: a host function throws moe::Error (its return type is satisfied by the throw);
# a device body is left empty.
function stub(indent, num, name, kind) {
  print indent "// Your code here: " (handout == "" ? "notes/assignments/" : handout) \
    " says what " name " must do."
  if (kind == "device")
    print indent "// (device code cannot throw: this kernel does nothing until you write it)"
  else
    print indent "throw ::moe::Error(\"not implemented yet (assignment " num "): " name "\");"
}

function begin_marker(line, num, name, kind, extra) {
  if (name !~ /^[A-Za-z_][A-Za-z0-9_:]*$/ || (kind != "host" && kind != "device") || extra) {
    fail("malformed BEGIN marker '" line "'. HINT: '// ASSIGNMENT " num \
         " BEGIN <function name>' (add ' device' for a CUDA kernel)")
    return
  }
  if (open) {
    fail("ASSIGNMENT " num " BEGIN inside the open region of assignment " open_num " (line " \
         open_line "). HINT: regions do not nest; close the first one")
    return
  }
  open = 1
  open_num = num
  open_line = FNR
  open_name = name
  if (mode == "list") printf "%s\t%s\t%d\t%s\t%s\n", num, FILENAME, FNR, name, kind
  if (mode == "stub") {
    print line
    if (num == n) stub(indent, num, name, kind)
  }
}

function end_marker(line, num, extra) {
  if (extra) {
    fail("malformed END marker '" line "'. HINT: '// ASSIGNMENT " num " END' and nothing after it")
  } else if (!open) {
    fail("ASSIGNMENT " num " END without a BEGIN. HINT: every region opens with " \
         "'// ASSIGNMENT " num " BEGIN <function>'")
  } else if (num != open_num) {
    fail("ASSIGNMENT " num " END closes the region of assignment " open_num " (line " \
         open_line "). HINT: the numbers of BEGIN and END must agree")
  } else if (FNR == open_line + 1) {
    fail("the region of " open_name " (assignment " num ") is empty. HINT: markers go around " \
         "the reference body")
  }
  open = 0
  if (mode == "stub") print line
}

BEGIN {
  open = 0
  bad = 0
  if (mode != "check" && mode != "list" && mode != "stub") {
    print "regions.awk: mode must be check, list or stub, got '" mode "'" > "/dev/stderr"
    bad = 2
    exit 2
  }
}

FNR == 1 && NR != 1 && open { unclosed(prev_file) }

{
  prev_file = FILENAME
  if ($0 ~ /^[ \t]*\/\/ ASSIGNMENT /) {
    indent = $0
    sub(/\/\/.*$/, "", indent)
    k = 1
    while (k <= NF && $k != "ASSIGNMENT") k++
    num = $(k + 1)
    if (num !~ /^[0-9]+$/) {
      fail("malformed marker '" $0 "'. HINT: '// ASSIGNMENT <number> BEGIN <function>' or " \
           "'// ASSIGNMENT <number> END'")
    } else if ($(k + 2) == "BEGIN") {
      begin_marker($0, num, $(k + 3), (k + 4 <= NF) ? $(k + 4) : "host", k + 5 <= NF)
      next
    } else if ($(k + 2) == "END") {
      end_marker($0, num, k + 3 <= NF)
      next
    } else {
      fail("malformed marker '" $0 "'. HINT: the third word must be BEGIN or END")
    }
  }
  if (mode == "stub" && !(open && open_num == n)) print
}

END {
  if (open) unclosed(prev_file)
  exit bad
}
