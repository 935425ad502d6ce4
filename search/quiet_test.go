package search

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"hwnas/store"
)

// procState is the state letter of /proc/PID/stat (R, S, T, ...).
func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndex(s, ")")+1:])[0]
}

func startSleeper(t *testing.T, cpus []int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := startPinned(cmd.Start, cpus); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func waitState(t *testing.T, pid int, want string) {
	t.Helper()
	for i := 0; i < 200 && procState(t, pid) != want; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if got := procState(t, pid); got != want {
		t.Fatalf("process %d is in state %s, want %s", pid, got, want)
	}
}

// TestQuietSlot: while one process measures, the others (including one
// started meanwhile) are stopped; they continue when it is done.
func TestQuietSlot(t *testing.T) {
	q := NewQuietSlot()
	a, b := startSleeper(t, nil), startSleeper(t, nil)
	q.add(a.Process.Pid)
	q.add(b.Process.Pid)
	q.begin(a.Process.Pid)
	waitState(t, b.Process.Pid, "T")
	if procState(t, a.Process.Pid) == "T" {
		t.Fatal("the measuring process was stopped")
	}
	c := startSleeper(t, nil)
	q.add(c.Process.Pid)
	waitState(t, c.Process.Pid, "T")
	q.end()
	waitState(t, b.Process.Pid, "S")
	waitState(t, c.Process.Pid, "S")
	if q.Measured != 1 {
		t.Fatalf("measured %d", q.Measured)
	}
}

// TestRunParallelWorkers: two local workers run a real study (quiet slot
// forced on, pinning where the machine has two cores): every trial is done once, both slots took trials, and
// the strategy observed all of them in order (its checkpoint's next
// trial).
func TestRunParallelWorkers(t *testing.T) {
	dir := miniMNIST(t)
	db := openDB(t, t.TempDir()+"/hwnas.db")
	ctx := context.Background()
	o := testOptions(t, db, "par", testConfig(dir, "evolution"), 6)
	o.Workers, o.Quiet = 2, QuietOn
	sum, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	trials := checkTrials(t, db, "par", 6)
	slots := map[string]bool{}
	for _, tr := range trials {
		if tr.Attempts != 1 {
			t.Fatalf("trial %d ran %d times", tr.Number, tr.Attempts)
		}
		slots[tr.Worker[strings.LastIndex(tr.Worker, "/"):]] = true
	}
	if len(slots) != 2 {
		t.Fatalf("trials ran on slots %v, want 2", slots)
	}
	st, _ := db.GetStudy(ctx, "par")
	ck, err := db.LatestCheckpoint(ctx, st.ID)
	if err != nil || ck.Step != 6 || sum.Done != 6 {
		t.Fatalf("checkpoint step %d (%v), summary done %d", ck.Step, err, sum.Done)
	}
	if ws, _ := db.LiveWorkers(ctx, st.ID, store.RoleTrain, time.Hour); len(ws) != 0 {
		t.Fatalf("workers still registered after the run: %+v", ws)
	}
}

// TestQuietMode: auto pauses the others only for slots that share cores;
// on and off are what they say; anything else is refused.
func TestQuietMode(t *testing.T) {
	for _, c := range []struct {
		mode   string
		slots  int
		pinned bool
		want   bool
	}{
		{"", 2, true, false}, {"auto", 2, false, true}, {"auto", 8, true, false}, {"auto", 1, false, false},
		{"on", 2, true, true}, {"on", 1, false, true}, {"off", 4, false, false},
	} {
		m, err := ParseQuietMode(c.mode)
		if err != nil {
			t.Fatal(err)
		}
		if got, why := m.use(c.slots, c.pinned); got != c.want || why == "" {
			t.Errorf("%q with %d slots (pinned %v): %v (%s), want %v", c.mode, c.slots, c.pinned, got, why, c.want)
		}
	}
	if got, _ := QuietMode("").use(2, false); !got {
		t.Error("the zero mode is not auto")
	}
	if _, err := ParseQuietMode("yes"); err == nil || !strings.Contains(err.Error(), `"yes"`) {
		t.Errorf("quiet mode yes: %v", err)
	}
}
