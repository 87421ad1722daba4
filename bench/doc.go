// Package bench holds zsync's performance benchmarks: the targets of
// docs/design.md "Performance targets", each measured against a reference taken in
// the same run on the same machine. They live in bench_test files and run only
// with -bench (make bench); the table they print is explained in README.md
// "Performance".
package bench
