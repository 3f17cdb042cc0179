// Package procstat reads the machine's CPU time from the aggregate "cpu" line of /proc/stat,
// for the benchmarks' CPU-per-request and steal figures.
package procstat

import (
	"os"
	"strconv"
	"strings"
)

// CPU is the machine's CPU time since boot, in clock ticks (USER_HZ: 100 on Linux).
type CPU struct {
	// Busy is all time but idle, iowait and steal (guest time is already in user).
	Busy int64
	// Steal is time this VM's virtual CPUs were ready to run while the hypervisor ran
	// something else.
	Steal int64
}

// Read returns the machine's CPU time; ok is false without a readable /proc/stat.
func Read() (c CPU, ok bool) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CPU{}, false
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal guest guest_nice
	if len(f) < 9 || f[0] != "cpu" {
		return CPU{}, false
	}
	for i, s := range f[1:] {
		v, _ := strconv.ParseInt(s, 10, 64)
		switch {
		case i == 7:
			c.Steal = v
		case i == 3 || i == 4 || i >= 7: // idle, iowait, guest, guest_nice
		default:
			c.Busy += v
		}
	}
	return c, true
}
