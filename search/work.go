package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"hwnas/accel"
	"hwnas/nas/data"
	"hwnas/store"
)

// DefaultLease is how long a claimed trial stays a worker's without a
// heartbeat; heartbeats come every third of it. A worker that dies (its
// machine lost, kill -9) loses its trial to another worker within one
// lease.
const DefaultLease = 30 * time.Second

// WorkOptions configure Work.
type WorkOptions struct {
	DB    *store.DB
	Study string
	// Slots is how many trials this process runs at once (0: 1), each in
	// its own trial process, pinned to distinct cores where the machine
	// has Slots×threads of them, measuring in one QuietSlot.
	Slots int
	// Worker is the trial process command (default: this executable +
	// "worker"); WorkerEnv is added to its environment.
	Worker    []string
	WorkerEnv []string
	Limits    WorkerLimits
	// Lease (0: DefaultLease) and Poll, how often an idle slot looks for
	// a trial (0: half a second).
	Lease, Poll time.Duration
	// NoPin turns core pinning off. Quiet says when the slots measure in
	// one QuietSlot ("": QuietAuto).
	NoPin bool
	Quiet QuietMode
	// UntilDone returns once the study is no longer running and no trial
	// is left to claim; otherwise Work runs until ctx ends. A study that
	// does not exist yet is waited for (workers may start before the
	// coordinator).
	UntilDone bool
	Log       io.Writer

	wake     *signal       // the coordinator's "new trials"
	finished chan<- string // tells the coordinator a trial ended
}

// signal is a broadcast: wait returns a channel closed by the next notify.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func newSignal() *signal { return &signal{ch: make(chan struct{})} }

func (s *signal) wait() <-chan struct{} {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

func (s *signal) notify() {
	s.mu.Lock()
	close(s.ch)
	s.ch = make(chan struct{})
	s.mu.Unlock()
}

// WorkerID names slot i of this process: host/pid/slot. A coordinator
// resuming on the same host re-queues at once the trials of a dead pid.
func WorkerID(slot int) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%d", host, os.Getpid(), slot)
}

// deadLocalWorker reports whether worker names a process of this host
// that no longer exists.
func deadLocalWorker(worker string) bool {
	parts := strings.Split(worker, "/")
	if len(parts) != 3 {
		return false
	}
	host, _ := os.Hostname()
	pid, err := strconv.Atoi(parts[1])
	if parts[0] != host || err != nil || pid == os.Getpid() {
		return false
	}
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

// Work runs the study's trials in this process: each slot claims the
// lowest pending trial (or one whose worker's lease lapsed), runs it in a
// trial process (train, compress, evaluate, and measure unless the study
// is measured on another device) while heartbeats hold its lease, and
// records the result under its claim. It is `hwnas worker --db URL
// --study S` on any machine, and the local workers of `hwnas search`.
func Work(ctx context.Context, o WorkOptions) error {
	if o.DB == nil {
		return errors.New("worker: no database")
	}
	if o.Slots <= 0 {
		o.Slots = 1
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if len(o.Worker) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.Worker = []string{exe, "worker"}
	}
	st, err := waitForStudy(ctx, o)
	if err != nil {
		return err
	}
	var cfg StudyConfig
	if err := json.Unmarshal(st.Config, &cfg); err != nil || cfg.Space == nil {
		return fmt.Errorf("study %q: its stored config is not a search config: %v", st.Name, err)
	}
	if err := cfg.Space.Validate(); err != nil {
		return fmt.Errorf("study %q: stored space: %w", st.Name, err)
	}
	w := &worker{o: o, st: st, cfg: cfg, reward: cfg.Reward.Reward()}
	threads := cfg.Threads
	cpus := make([][]int, o.Slots)
	pinned := o.Slots > 1
	for i := range cpus {
		if !o.NoPin {
			cpus[i] = SlotCPUs(i, o.Slots, threads)
		}
		pinned = pinned && cpus[i] != nil
	}
	quiet, why := o.Quiet.use(o.Slots, pinned)
	if quiet {
		w.quiet = NewQuietSlot()
	}
	if o.Slots > 1 {
		fmt.Fprintf(o.Log, "worker: %d slots, quiet slot %s (%s)\n", o.Slots, map[bool]string{true: "on", false: "off"}[quiet], why)
	}
	host, _ := os.Hostname()
	ids := make([]string, o.Slots)
	for i := range ids {
		ids[i] = WorkerID(i)
	}
	register := func() {
		for _, id := range ids {
			if err := o.DB.WorkerSeen(context.WithoutCancel(ctx), store.Worker{ID: id, Study: st.ID, Role: store.RoleTrain,
				Host: host, PID: os.Getpid()}); err != nil {
				fmt.Fprintf(o.Log, "worker: registering: %v\n", err)
			}
		}
	}
	register()
	defer func() {
		for _, id := range ids {
			o.DB.WorkerGone(context.WithoutCancel(ctx), id)
		}
	}()
	regCtx, stopReg := context.WithCancel(ctx)
	defer stopReg()
	go func() {
		tick := time.NewTicker(o.Lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-regCtx.Done():
				return
			case <-tick.C:
				register()
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make([]error, o.Slots)
	for i := range o.Slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.slot(ctx, ids[i], procPlace{cpus: cpus[i], quiet: w.quiet})
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.Join(errs...)
}

func waitForStudy(ctx context.Context, o WorkOptions) (store.Study, error) {
	said := false
	for {
		st, err := o.DB.GetStudy(ctx, o.Study)
		if err == nil || !errors.Is(err, store.ErrNotFound) || !o.UntilDone {
			return st, err
		}
		if !said {
			fmt.Fprintf(o.Log, "worker: waiting for study %s to be created\n", o.Study)
			said = true
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(o.Poll):
		}
	}
}

type worker struct {
	o      WorkOptions
	st     store.Study
	cfg    StudyConfig
	reward Reward
	quiet  *QuietSlot
	opMu   sync.Mutex // one read-modify-write of the op table at a time
}

// slot claims and runs trials until the study is over (UntilDone) or ctx
// ends.
func (w *worker) slot(ctx context.Context, id string, place procPlace) error {
	o := w.o
	for {
		if ctx.Err() != nil {
			return nil
		}
		wake := o.wake.wait()
		tr, claim, err := o.DB.ClaimTrial(ctx, w.st.ID, id, o.Lease)
		if errors.Is(err, store.ErrNotFound) {
			if o.UntilDone {
				over, err := w.studyOver(ctx)
				if err != nil || over {
					return err
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-wake:
			case <-time.After(o.Poll):
			}
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(o.Log, "worker %s: claiming: %v (retrying)\n", id, err)
			time.Sleep(o.Poll)
			continue
		}
		if err := w.run(ctx, tr, claim, place); err != nil && ctx.Err() == nil {
			fmt.Fprintf(o.Log, "worker %s: trial %s: %v\n", id, tr.Name(), err)
		}
		if o.finished != nil {
			select {
			case o.finished <- id:
			default:
			}
		}
	}
}

// studyOver: the study is no longer running and nothing is left to claim.
func (w *worker) studyOver(ctx context.Context) (bool, error) {
	st, err := w.o.DB.StudyByID(ctx, w.st.ID)
	if err != nil {
		return false, err
	}
	if st.Status == store.StudyRunning {
		return false, nil
	}
	c, err := w.o.DB.CountTrials(ctx, w.st.ID)
	return c.Pending == 0, err
}

// run evaluates one claimed trial and records it under the claim; a lost
// lease abandons it (another worker has it).
func (w *worker) run(ctx context.Context, tr store.Trial, claim store.Claim, place procPlace) error {
	db, o := w.o.DB, w.o
	d, _, err := parseDecisions(tr.Decisions)
	if err != nil {
		return db.FailClaimed(ctx, claim, FailInvalid+": decisions: "+err.Error())
	}
	cfg, err := w.cfg.Space.Decode(d)
	var cand *Candidate
	if err == nil {
		cand, err = BuildCandidate(cfg)
	}
	if err != nil {
		return db.FailClaimed(ctx, claim, FailInvalid+": "+err.Error())
	}
	spec := trialSpec(w.st, w.cfg, db.Path(), tr.Number, cfg, cand)
	if spec.Recipe, err = json.Marshal(cand.Layers); err != nil {
		return err
	}
	if spec.OpTable, err = opTable(ctx, db, w.st.DeviceFingerprint); err != nil {
		return err
	}
	if err = loadHistory(ctx, db, w.st.DeviceFingerprint, max(1, spec.Batch), &spec.Measure); err != nil {
		return err
	}
	if spec.Skip, err = w.skipRule(ctx, spec); err != nil {
		return err
	}
	spec.SkipMeasure = w.cfg.MeasureDevice != ""
	runCtx, cancel := context.WithCancel(ctx)
	lost := make(chan error, 1)
	go func() {
		tick := time.NewTicker(o.Lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-tick.C:
				if err := db.Heartbeat(runCtx, claim, o.Lease); errors.Is(err, store.ErrLeaseLost) {
					lost <- err
					cancel()
					return
				}
			}
		}
	}()
	t0 := time.Now()
	res, err := runTrialProcess(runCtx, o.Worker, o.WorkerEnv, spec, o.Limits, place)
	cancel()
	select {
	case e := <-lost:
		fmt.Fprintf(o.Log, "trial %s: abandoned: %v\n", tr.Name(), e)
		return nil
	default:
	}
	if ctx.Err() != nil {
		return nil // stopping: the lease lapses, or a resumed coordinator re-queues it
	}
	var te *TrialError
	if errors.As(err, &te) {
		fmt.Fprintf(o.Log, "trial %s: failed: %v\n", tr.Name(), te)
		return db.FailClaimed(ctx, claim, te.Error())
	}
	if err != nil {
		return err
	}
	m := store.Metrics{ValAccuracy: res.ValAccuracy, TestAccuracy: res.TestAccuracy, HasTest: spec.Test,
		Params: res.Params, CompressedBytes: res.Bytes, MACs: res.MACs, TrainSeconds: res.TrainSeconds}
	if spec.SkipMeasure {
		fmt.Fprintf(o.Log, "trial %s: val %.2f%% %d bytes, trained in %.1fs; waiting for a measurement on %s\n",
			tr.Name(), 100*res.ValAccuracy, res.Bytes, time.Since(t0).Seconds(), w.cfg.MeasureDevice)
		return db.SubmitForMeasure(ctx, claim, m, res.Weights)
	}
	row, err := w.cfg.rewardRow(res)
	var rew float64
	if err == nil {
		rew, err = w.reward.Of(res.ValAccuracy, row, res.Bytes)
	}
	if err != nil {
		te := &TrialError{FailNaN, err.Error()}
		fmt.Fprintf(o.Log, "trial %s: failed: %v\n", tr.Name(), te)
		return db.FailClaimed(ctx, claim, te.Error())
	}
	m.Reward = rew
	ls, err := storedLatencies(res)
	if err != nil {
		return err
	}
	if err := db.FinishClaimed(ctx, claim, m, ls, res.Weights); err != nil {
		return err
	}
	w.opMu.Lock()
	err = mergeResultOps(ctx, db, res)
	w.opMu.Unlock()
	if err != nil {
		return err
	}
	pred := "no prediction"
	if res.PredictedNs > 0 {
		pred = fmt.Sprintf("predicted %v (%+.0f%%, %.0f%% of ops known)", time.Duration(res.PredictedNs).Round(100*time.Nanosecond),
			100*res.PredictionError(), 100*res.PredCoverage)
	}
	fmt.Fprintf(o.Log, "trial %s: reward %.4f val %.2f%% test %.2f%% %d bytes latency %s, %s, %.1fs\n",
		tr.Name(), rew, 100*res.ValAccuracy, 100*res.TestAccuracy, res.Bytes, describeLatencies(res.Latencies), pred, time.Since(t0).Seconds())
	return nil
}

// describeLatencies is one line for a trial's latencies: each runtime's
// figure with its interval and ratio to the reference, and whether the
// measurement was disturbed.
func describeLatencies(ls []store.Latency) string {
	var parts []string
	for _, l := range ls {
		p := fmt.Sprintf("%v", l.Figure().Round(100*time.Nanosecond))
		if l.Stats.High > l.Stats.Low {
			p += fmt.Sprintf(" [%v, %v]", l.Stats.Low.Round(100*time.Nanosecond), l.Stats.High.Round(100*time.Nanosecond))
		}
		if l.Ratio != nil {
			p += fmt.Sprintf(" = %.3fx%s", l.Ratio.Value, l.Reference)
		}
		if len(ls) > 1 {
			p = l.RuntimeName() + " " + p
		}
		if l.Disturbed {
			p += " (disturbed)"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// loadHistory looks up the reference's and the probe's latest figures on
// the device in each runtime ls measures (their usual figures).
func loadHistory(ctx context.Context, db *store.DB, fingerprint string, batch int, ls *LatencySpec) error {
	ls.History, ls.ProbeHistory = map[string][]time.Duration{}, map[string][]time.Duration{}
	for _, rt := range ls.runtimes() {
		for _, h := range []struct {
			model string
			into  map[string][]time.Duration
		}{{ls.reference(), ls.History}, {store.ProbeModel, ls.ProbeHistory}} {
			figs, err := db.ReferenceHistory(ctx, fingerprint, batch, rt, h.model, historyLen)
			if err != nil {
				return err
			}
			if len(figs) > 0 {
				h.into[rt] = figs
			}
		}
	}
	return nil
}

// trialSpec is the trial process's spec for a candidate of the study with
// the study's budget.
func trialSpec(st store.Study, sc StudyConfig, dbPath string, number int, cfg Config, cand *Candidate) *TrialSpec {
	spec := &TrialSpec{Study: st.Name, Trial: number, Seed: sc.Seed*1000003 + uint64(number),
		Config: cfg, Arch: cand.Arch, Data: sc.Data, DataOptions: sc.DataOptions, DataDigest: studyDataDigest(st),
		BatchAugment: sc.Augment, Epochs: sc.Epochs, Subset: sc.Subset,
		Optimizer: sc.Optimizer, LR: sc.LR, BatchSize: sc.BatchSize,
		ValSubset: sc.ValSubset, Test: true, Device: sc.Device, Threads: sc.Threads,
		Batch: sc.Batch, Measure: sc.latencySpec()}
	if cfg.Distill {
		spec.Teacher = TeacherPath(dbPath, st.Name)
	}
	return spec
}

// studyDataDigest is the split digest in a study's data record ("" when
// it has none: IDX and CIFAR sets, studies made before the record).
func studyDataDigest(st store.Study) string {
	var info data.Info
	if json.Unmarshal(st.DataInfo, &info) != nil {
		return ""
	}
	return info.Digest
}

// opTable returns a device's per-op table as key → ns.
func opTable(ctx context.Context, db *store.DB, fingerprint string) (map[string]float64, error) {
	rows, err := db.OpLatencies(ctx, fingerprint)
	if err != nil {
		return nil, err
	}
	t := make(map[string]float64, len(rows))
	for k, v := range rows {
		t[k] = float64(v)
	}
	return t, nil
}

// mergeOpTimes folds measured per-op times into the device's table.
func mergeOpTimes(ctx context.Context, db *store.DB, dev accel.Device, ops []OpTime) error {
	if len(ops) == 0 {
		return nil
	}
	cur, err := db.OpLatencies(ctx, dev.Fingerprint)
	if err != nil {
		return err
	}
	return db.PutOpLatencies(ctx, dev, MergeOpTimes(cur, ops))
}

// mergeResultOps folds a trial result's per-op times into the table of
// the device it ran on.
func mergeResultOps(ctx context.Context, db *store.DB, res *TrialResult) error {
	if len(res.Latencies) == 0 {
		return nil
	}
	return mergeOpTimes(ctx, db, res.Latencies[0].Device, res.PerOp)
}

// predictionError is a latency's per-op table error, NaN without one.
func predictionError(l store.Latency) float64 {
	if l.Predicted <= 0 || l.Stats.Median <= 0 {
		return math.NaN()
	}
	return l.PredictionError()
}

// storedLatencies are res's latencies as stored: hwnas's row carries the
// per-op times (which travel from a worker process as res.PerOp).
func storedLatencies(res *TrialResult) ([]store.Latency, error) {
	ls := slices.Clone(res.Latencies)
	if len(res.PerOp) == 0 {
		return ls, nil
	}
	for i := range ls {
		if ls[i].RuntimeName() == store.RuntimeHwnas {
			ops, err := json.Marshal(res.PerOp)
			if err != nil {
				return nil, err
			}
			ls[i].Ops = ops
			break
		}
	}
	return ls, nil
}
