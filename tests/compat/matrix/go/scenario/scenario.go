// Package scenario is the matrix scenario for the Go programs (franz-go, sarama): command line,
// record plan, checker and cell reporting. Same record shape and protocol as
// tests/compat/matrix/python/scenario.py; see tests/compat/matrix/README.md.
package scenario

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Codecs in the order every program produces them.
var Codecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// Cells in report order.
var Cells = append(append([]string{"create"}, prefixed("produce:", Codecs)...),
	"consume", "commit", "describe", "delete")

const (
	valueBytes = 100
	// Problems listed in a failure detail before the rest are only counted.
	errorsShownMax = 5
	// Characters of a failure detail kept in a cell line.
	detailCharsMax = 600
)

func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}

// Key, Value and Headers of record j.
func Key(j int) []byte { return []byte(fmt.Sprintf("k-%d", j)) }

func Value(j int) []byte {
	head := fmt.Sprintf("v-%d-", j)
	if len(head) >= valueBytes {
		return []byte(head)
	}
	return []byte(head + strings.Repeat("x", valueBytes-len(head)))
}

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

func Headers(j int) []Header {
	return []Header{{"h1", []byte(strconv.Itoa(j))}, {"h2", []byte("x")}}
}

// Args is the command line.
type Args struct {
	Bootstrap       string
	Topic           string
	Group           string
	Partitions      int
	Count           int
	CompressedCount int
	DeadlineAt      time.Time
}

// ParseArgs reads BOOTSTRAP TOPIC GROUP PARTITIONS COUNT COMPRESSED_COUNT [--deadline-s S].
func ParseArgs(program string) Args {
	deadlineS := flag.Float64("deadline-s", 120, "the whole scenario gives up after this")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: %s [--deadline-s S] BOOTSTRAP TOPIC GROUP PARTITIONS "+
			"COUNT COMPRESSED_COUNT\n", program)
	}
	// Go's flag package stops at the first positional argument: move flags to the front.
	var flags, positional []string
	argv := os.Args[1:]
	for i := 0; i < len(argv); i++ {
		if strings.HasPrefix(argv[i], "--") && i+1 < len(argv) && !strings.Contains(argv[i], "=") {
			flags = append(flags, argv[i], argv[i+1])
			i++
		} else {
			positional = append(positional, argv[i])
		}
	}
	if err := flag.CommandLine.Parse(append(flags, positional...)); err != nil {
		os.Exit(2)
	}
	rest := flag.Args()
	if len(rest) != 6 {
		flag.Usage()
		os.Exit(2)
	}
	atoi := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			flag.Usage()
			os.Exit(2)
		}
		return n
	}
	return Args{
		Bootstrap:       rest[0],
		Topic:           rest[1],
		Group:           rest[2],
		Partitions:      atoi(rest[3]),
		Count:           atoi(rest[4]),
		CompressedCount: atoi(rest[5]),
		DeadlineAt:      time.Now().Add(time.Duration(*deadlineS * float64(time.Second))),
	}
}

// Range is the record numbers [Start, End) of one codec.
type Range struct{ Start, End int }

// Plan says which record numbers each codec produces.
type Plan struct {
	Codecs []string
	Ranges map[string]Range
	Total  int
}

func NewPlan(codecs []string, count, compressedCount int) Plan {
	p := Plan{Codecs: codecs, Ranges: map[string]Range{}}
	for _, c := range codecs {
		n := compressedCount
		if c == "none" {
			n = count
		}
		p.Ranges[c] = Range{p.Total, p.Total + n}
		p.Total += n
	}
	return p
}

func (p Plan) codecOf(j int) string {
	for c, r := range p.Ranges {
		if j >= r.Start && j < r.End {
			return c
		}
	}
	return "?"
}

var keyPattern = regexp.MustCompile(`^k-(\d+)$`)

// Verifier checks consumed records: every j once, exact key, value and headers, offsets per
// partition contiguous from 0, every partition used.
type Verifier struct {
	plan       Plan
	partitions int
	seen       []bool
	Unique     int
	offsets    map[int32][]int64
	errors     []string
	errorCount int
}

func NewVerifier(plan Plan, partitions int) *Verifier {
	return &Verifier{plan: plan, partitions: partitions, seen: make([]bool, plan.Total),
		offsets: map[int32][]int64{}}
}

func (v *Verifier) Error(format string, a ...any) {
	v.errorCount++
	if len(v.errors) < errorsShownMax {
		v.errors = append(v.errors, fmt.Sprintf(format, a...))
	}
}

func (v *Verifier) Add(partition int32, offset int64, key, value []byte, headers []Header) {
	where := fmt.Sprintf("partition %d offset %d", partition, offset)
	if partition < 0 || int(partition) >= v.partitions {
		v.Error("%s: partition out of range", where)
		return
	}
	v.offsets[partition] = append(v.offsets[partition], offset)
	m := keyPattern.FindSubmatch(key)
	j := -1
	if m != nil {
		j, _ = strconv.Atoi(string(m[1]))
	}
	if j < 0 || j >= v.plan.Total {
		v.Error("%s: unexpected key %q", where, key)
		return
	}
	if v.seen[j] {
		v.Error("%s: duplicate record %q", where, key)
		return
	}
	v.seen[j] = true
	v.Unique++
	if !bytes.Equal(value, Value(j)) {
		v.Error("%s: value of %q is %q", where, key, value)
	}
	want := Headers(j)
	same := len(headers) == len(want)
	for i := 0; same && i < len(want); i++ {
		same = headers[i].Key == want[i].Key && bytes.Equal(headers[i].Value, want[i].Value)
	}
	if !same {
		v.Error("%s: headers of %q are %v", where, key, headers)
	}
}

// Problems returns the findings as one string ("" when every record came back exactly).
func (v *Verifier) Problems() string {
	missing := map[string]int{}
	total := 0
	for j, seen := range v.seen {
		if !seen {
			missing[v.plan.codecOf(j)]++
			total++
		}
	}
	if total > 0 {
		v.Error("%d of %d records missing: %v", total, v.plan.Total, missing)
	}
	for p, offsets := range v.offsets {
		sorted := append([]int64(nil), offsets...)
		sort.Slice(sorted, func(a, b int) bool { return sorted[a] < sorted[b] })
		for i, o := range sorted {
			if o != int64(i) {
				v.Error("partition %d: offsets not contiguous from 0 at position %d", p, i)
				break
			}
		}
	}
	if v.plan.Total >= 100*v.partitions && len(v.offsets) < v.partitions {
		v.Error("only %d of %d partitions got records", len(v.offsets), v.partitions)
	}
	if v.errorCount == 0 {
		return ""
	}
	return fmt.Sprintf("%d problems: %s", v.errorCount, strings.Join(v.errors, "; "))
}

// Failure is a failed check; its message says what was expected and what came.
type Failure struct{ Message string }

func (f Failure) Error() string { return f.Message }

func Failf(format string, a ...any) error { return Failure{fmt.Sprintf(format, a...)} }

// Report runs steps and prints one JSON line per cell.
type Report struct {
	client  string
	results map[string]string
}

func NewReport(client string) *Report {
	return &Report{client: client, results: map[string]string{}}
}

func (r *Report) emit(cell, status string, ms int64, detail string) {
	r.results[cell] = status
	line := map[string]any{"cell": cell, "status": status, "ms": ms}
	if detail != "" {
		if len(detail) > detailCharsMax {
			detail = detail[:detailCharsMax]
		}
		line["detail"] = detail
	}
	out, _ := json.Marshal(line)
	fmt.Println(string(out))
	if status == "fail" {
		fmt.Fprintf(os.Stderr, "%s %s: %s\n", r.client, cell, detail)
	}
}

// Run runs step; an error fails the cell.
func (r *Report) Run(cell string, step func() error) bool {
	start := time.Now()
	err := step()
	ms := time.Since(start).Milliseconds()
	if err != nil {
		r.emit(cell, "fail", ms, err.Error())
		return false
	}
	r.emit(cell, "pass", ms, "")
	return true
}

func (r *Report) NotApplicable(cell, reason string) { r.emit(cell, "n/a", 0, reason) }

// Finish prints the summary line and returns the exit code.
func (r *Report) Finish(version string) int {
	ok := true
	for _, cell := range Cells {
		if _, done := r.results[cell]; !done {
			r.emit(cell, "fail", 0, "the program never ran this step")
		}
		if r.results[cell] == "fail" {
			ok = false
		}
	}
	out, _ := json.Marshal(map[string]any{"client": r.client, "version": version, "ok": ok})
	fmt.Println(string(out))
	if ok {
		return 0
	}
	return 1
}

// CheckGroup checks a described group: Stable, one member, which owns every partition of topic.
func CheckGroup(state, protocolType string, assignments []map[string][]int32, topic string,
	partitions int) error {
	if strings.ToLower(strings.ReplaceAll(state, "_", "")) != "stable" {
		return Failf("group state is %q, want \"Stable\" while the consumer is in it", state)
	}
	if protocolType != "consumer" {
		return Failf("protocol type is %q, want \"consumer\"", protocolType)
	}
	if len(assignments) != 1 {
		return Failf("group has %d members, want 1", len(assignments))
	}
	want := map[string][]int32{topic: {}}
	for p := 0; p < partitions; p++ {
		want[topic] = append(want[topic], int32(p))
	}
	got := map[string][]int32{}
	for t, ps := range assignments[0] {
		sorted := append([]int32(nil), ps...)
		sort.Slice(sorted, func(a, b int) bool { return sorted[a] < sorted[b] })
		got[t] = sorted
	}
	if !reflect.DeepEqual(got, want) {
		return Failf("member assignment is %v, want %v", got, want)
	}
	return nil
}

// CheckCommitted checks that the committed offsets equal every partition's end offset.
func CheckCommitted(committed, ends map[int32]int64) error {
	if !reflect.DeepEqual(committed, ends) {
		return Failf("committed offsets %v differ from end offsets %v", committed, ends)
	}
	return nil
}

// Until polls condition every 100 ms until it holds or the deadline passes.
func Until(deadline time.Time, what string, condition func() (bool, error)) error {
	for {
		ok, err := condition()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return Failf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
