package codepages

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

const sample = `00400000-0083c000 r-xp 00000000 fd:01 123 /usr/bin/kilometers
Size:               4336 kB
Rss:                3760 kB
Anonymous:             0 kB
0083c000-00cdd000 r--p 0043c000 fd:01 123 /usr/bin/kilometers
Rss:                3460 kB
Anonymous:             0 kB
00cdd000-00d3b000 rw-p 008dd000 fd:01 123 /usr/bin/kilometers
Rss:                 248 kB
Anonymous:           120 kB
00d3b000-00e00000 r--p 00000000 fd:01 999 /usr/bin/kilometers
Rss:                  40 kB
Anonymous:             8 kB
7f0000000000-7f0000100000 r-xp 00000000 fd:01 77 /usr/lib/libc.so.6
Rss:                1320 kB
Anonymous:             0 kB
7f0000200000-7f0000300000 rw-p 00000000 00:00 0
Rss:                 900 kB
Anonymous:           900 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
Rss:                  12 kB
Anonymous:            12 kB
`

// Only the executable's unwritable mappings that hold no written page are
// released: never data, a relocated (copy-on-write) page, another file or
// anonymous memory.
func TestReleasable(t *testing.T) {
	maps, err := parseSmaps([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) != 7 {
		t.Fatalf("parsed %d mappings, want 7", len(maps))
	}
	var got []string
	for _, m := range maps {
		if releasable(m, "/usr/bin/kilometers") {
			got = append(got, m.perms+" "+strconv.FormatInt(m.rssKB, 10))
		}
	}
	if strings.Join(got, ",") != "r-xp 3760,r--p 3460" {
		t.Errorf("releasable: %v, want the text and the read-only data", got)
	}
}

func TestParseSmapsRefusesGarbage(t *testing.T) {
	for _, raw := range []string{"zzzz r-xp 0 0 0 /x\n", "10-5 r-xp 0 0 0 /x\n", "1000-2000\n"} {
		if _, err := parseSmaps([]byte(raw)); err == nil {
			t.Errorf("%q: parsed", raw)
		}
	}
}

// Releasing the test binary's own pages leaves it running: the pages come
// back from the page cache on their next touch.
func TestReleaseKeepsTheProcessWorking(t *testing.T) {
	before := rssFileKB(t)
	kb, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	if kb <= 0 {
		t.Fatalf("released %d KiB of a running test binary", kb)
	}
	if after := rssFileKB(t); after >= before {
		t.Errorf("file-backed RSS %d KiB before, %d after", before, after)
	}
	// Code and read-only data that were dropped work as before.
	if s := strconv.Itoa(12345) + strings.Repeat("x", 3); s != "12345xxx" {
		t.Errorf("after release: %q", s)
	}
}

func rssFileKB(t *testing.T) int64 {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// A Releaser releases the pages that came back since, without reading the
// memory map again.
func TestReleaserReleasesAgain(t *testing.T) {
	rel, kb, err := NewReleaser()
	if err != nil {
		t.Fatal(err)
	}
	if kb <= 0 || len(rel.r.spans) == 0 {
		t.Fatalf("released %d KiB in %d ranges of a running test binary", kb, len(rel.r.spans))
	}
	// Bring pages back: formatting and the test's own code and data.
	for i := range 1000 {
		_ = strconv.Itoa(i) + strings.Repeat("y", i%7)
	}
	before := rssFileKB(t)
	if err := rel.Again(); err != nil {
		t.Fatal(err)
	}
	if after := rssFileKB(t); after >= before {
		t.Errorf("file-backed RSS %d KiB before the second release, %d after", before, after)
	}
}

func TestTracerIn(t *testing.T) {
	for _, tt := range []struct {
		status string
		want   bool
	}{
		{"Name:\tkilometers\nState:\tS (sleeping)\nTracerPid:\t0\nUid:\t0\n", false},
		{"Name:\tkilometers\nTracerPid:\t4242\nUid:\t0\n", true},
		{"Name:\tkilometers\nTracerPid:\t17", true},
		{"Name:\tkilometers\nUid:\t0\n", false},
		{"Name:\tTracerPid: 9\nTracerPid:\t0\n", false},
		{"", false},
	} {
		if got := tracerIn([]byte(tt.status)); got != tt.want {
			t.Errorf("tracerIn(%q) = %v, want %v", tt.status, got, tt.want)
		}
	}
}

// The test binary runs untraced, unless someone debugs it.
func TestTracedNowReadsTheStatus(t *testing.T) {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	traced, err := tracedNow(make([]byte, 8<<10))
	if err != nil {
		t.Fatal(err)
	}
	if want := tracerIn(raw); traced != want || strings.Contains(string(raw), "TracerPid:\t0\n") == traced {
		t.Errorf("tracedNow = %v; the status says %v:\n%s", traced, want, raw)
	}
}
