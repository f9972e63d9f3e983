package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// cpuTimes is the machine's CPU time so far, from the first line of
// /proc/stat, in clock ticks.
type cpuTimes struct {
	steal, total uint64
}

// readCPUTimes reads /proc/stat; ok is false where there is none.
func readCPUTimes() (cpuTimes, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, false
	}
	return parseCPUTimes(b)
}

// parseCPUTimes takes the aggregate "cpu" line: user, nice, system, idle,
// iowait, irq, softirq, steal, then guest and guest_nice, which user and
// nice already include.
func parseCPUTimes(stat []byte) (cpuTimes, bool) {
	sc := bufio.NewScanner(bytes.NewReader(stat))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 9 || f[0] != "cpu" {
			continue
		}
		var t cpuTimes
		for i, s := range f[1:min(len(f), 9)] {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return cpuTimes{}, false
			}
			t.total += n
			if i == 7 {
				t.steal = n
			}
		}
		return t, true
	}
	return cpuTimes{}, false
}

// stealShare is the share of the machine's CPU time between a and b that
// its hypervisor gave to someone else: a virtual machine whose host is
// oversubscribed runs the variants slower by turns, and no method of
// measuring cancels that out. Zero when nothing elapsed.
func stealShare(a, b cpuTimes) float64 {
	if b.total <= a.total || b.steal < a.steal {
		return 0
	}
	return float64(b.steal-a.steal) / float64(b.total-a.total)
}

// stealNote is what a phase's heading says of steal time: nothing when
// there was none to speak of, and a warning from 5%, at which this
// session's machine moved the floor's added latency tenfold between runs.
func stealNote(share *float64) string {
	switch {
	case share == nil || *share < 0.005:
		return ""
	case *share < 0.05:
		return fmt.Sprintf("; hypervisor steal %.0f%% of CPU time", 100**share)
	default:
		return fmt.Sprintf("; hypervisor steal %.0f%% of CPU time: it lands on the variants by turns, so these ratios swing between runs", 100**share)
	}
}
