#!/usr/bin/env bash
# client-suite.sh — run a real client's own test suite (psycopg2's unittest suite) against a
# PostgreSQL endpoint — the server itself, PgBouncer or pgrelay — and print one summary line, so the
# endpoints can be compared (a transaction pooler breaks tests that rely on session state).
#
# Usage:
#   benchmarks/client-suite.sh --tests DIR --host H --port P --db D --user U [--password PW] [--label L]
#
#   --tests DIR  psycopg2's tests/ directory (or its parent), of the version installed, e.g.
#                git --git-dir=<psycopg2 clone> archive 2_9_5 tests | tar -x -C /work/psycopg2-tests
#   The user should be a superuser, the database should have `CREATE EXTENSION hstore` done and the
#   server max_prepared_transactions > 0, otherwise those tests are skipped.
#
# Environment: OUT=/tmp (output dir), PYTHON=/usr/bin/python3 (must import psycopg2),
#   TIMEOUT=900 (seconds, whole run), TEST_TIMEOUT=60 (seconds per test: a test that hangs is killed
#   with a traceback in the log, counted as an error "TIMEOUT <id>", and the run resumes after it).
# Output: prints `label ran=N failures=F errors=E skipped=S`; the full log goes to
#   $OUT/client-suite-<label>.log, the failing/erroring test ids to $OUT/client-suite-<label>.failed
#   (lines `FAIL|ERROR|TIMEOUT|UNFINISHED <test id>`), raw progress to $OUT/client-suite-<label>.progress.
#   Exit status 0 even when tests fail; 1 if the run did not complete; 2 on usage errors.
set -euo pipefail

usage() { sed -n '2,21s/^# \{0,1\}//p' "$0" >&2; exit 2; }
TESTS= HOST= PORT= DB= DBUSER= PASSWORD= LABEL=run
while (($#)); do
    [[ $# -ge 2 ]] || usage
    case $1 in
        --tests) TESTS=$2 ;; --host) HOST=$2 ;; --port) PORT=$2 ;; --db) DB=$2 ;;
        --user) DBUSER=$2 ;; --password) PASSWORD=$2 ;; --label) LABEL=$2 ;; *) usage ;;
    esac
    shift 2
done
[[ -n $TESTS && -n $HOST && -n $PORT && -n $DB && -n $DBUSER ]] || usage
TESTS=$(cd "$TESTS" && pwd)
if [[ ! -f $TESTS/tests/__init__.py && $(basename "$TESTS") == tests ]]; then TESTS=$(dirname "$TESTS"); fi
[[ -f $TESTS/tests/testconfig.py ]] || { echo "no psycopg2 tests/ in $TESTS" >&2; exit 2; }

OUT=${OUT:-/tmp}
mkdir -p "$OUT"
LOG=$OUT/client-suite-$LABEL.log
PROGRESS=$OUT/client-suite-$LABEL.progress
FAILED=$OUT/client-suite-$LABEL.failed
: >"$PROGRESS"
export PSYCOPG2_TESTDB=$DB PSYCOPG2_TESTDB_HOST=$HOST PSYCOPG2_TESTDB_PORT=$PORT \
    PSYCOPG2_TESTDB_USER=$DBUSER PROGRESS TEST_TIMEOUT=${TEST_TIMEOUT:-60}
[[ -n $PASSWORD ]] && export PSYCOPG2_TESTDB_PASSWORD=$PASSWORD

# The driver runs the suite in a child process that appends `START id` / `PASS|FAIL|ERROR|SKIP id`
# to $PROGRESS; when a test exceeds TEST_TIMEOUT faulthandler kills the child, the test is recorded
# as TIMEOUT (or a crash) and a new child runs the tests not recorded yet.
read -r -d '' DRIVER <<'EOF' || true
import faulthandler, os, subprocess, sys, unittest
P, T = os.environ['PROGRESS'], int(os.environ['TEST_TIMEOUT'])
def recorded():
    with open(P) as f:
        return [l.rstrip('\n').split(' ', 1) for l in f if ' ' in l]
def note(kind, test):
    with open(P, 'a') as f:
        f.write(f'{kind} {test.id()}\n')
if sys.argv[1:] == ['child']:
    import tests
    done = {i for k, i in recorded() if k != 'START'}
    def flat(s):
        for t in s:
            yield from (flat(t) if isinstance(t, unittest.TestSuite) else [t])
    suite = unittest.TestSuite(t for t in flat(tests.test_suite()) if t.id() not in done)
    class Result(unittest.TextTestResult):
        def startTest(self, t):
            note('START', t); faulthandler.dump_traceback_later(T, exit=True); super().startTest(t)
        def stopTest(self, t):
            faulthandler.cancel_dump_traceback_later(); super().stopTest(t)
        def addSuccess(self, t): note('PASS', t); super().addSuccess(t)
        def addExpectedFailure(self, t, e): note('PASS', t); super().addExpectedFailure(t, e)
        def addUnexpectedSuccess(self, t): note('FAIL', t); super().addUnexpectedSuccess(t)
        def bad(self, kind, t, e, s=None):  # traceback now: a later timeout kills the report
            note(kind, t); self.stream.writeln(f'{kind} {(s or t).id()}\n' + self._exc_info_to_string(e, t))
        def addFailure(self, t, e): super().addFailure(t, e); self.bad('FAIL', t, e)
        def addError(self, t, e): super().addError(t, e); self.bad('ERROR', t, e)
        def addSkip(self, t, r): note('SKIP', t); super().addSkip(t, r)
        def addSubTest(self, t, s, e):  # a failing subtest fails its test
            super().addSubTest(t, s, e)
            if e is not None:
                self.bad('FAIL' if issubclass(e[0], t.failureException) else 'ERROR', t, e, s)
    unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=Result).run(suite)
    sys.exit(0)
while subprocess.call([sys.executable, '-u', '-c', sys.argv[1], 'child']) != 0:
    r = recorded()
    if not r or r[-1][0] != 'START':
        sys.exit('test run failed outside a test, see the log')
    print(f'*** TIMEOUT {r[-1][1]} after {T}s, resuming', flush=True)
    with open(P, 'a') as f:
        f.write(f'TIMEOUT {r[-1][1]}\n')
EOF

rc=0
(cd "$TESTS" && timeout -k 10 "${TIMEOUT:-900}" "${PYTHON:-/usr/bin/python3}" -c "$DRIVER" "$DRIVER") \
    >"$LOG" 2>&1 || rc=$?
# last result of each test id (START without a result: the run was cut by TIMEOUT)
LAST=$(awk '{ i = substr($0, length($1) + 2) } $1 != "START" { k[i] = $1 } $1 == "START" { s[i] = 1 }
    END { for (i in s) if (!(i in k)) print "UNFINISHED", i; for (i in k) print k[i], i }' "$PROGRESS" |
    sort -k2)
grep -E '^(FAIL|ERROR|TIMEOUT|UNFINISHED) ' <<<"$LAST" >"$FAILED" || true
count() { grep -cE "^($1) " <<<"$LAST" || true; }
echo "$LABEL ran=$(count 'PASS|FAIL|ERROR|TIMEOUT|SKIP') failures=$(count FAIL)" \
    "errors=$(count 'ERROR|TIMEOUT') skipped=$(count SKIP)$( ((rc == 0)) || echo " INCOMPLETE(rc=$rc, see $LOG)")"
((rc == 0)) || exit 1
