package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"testing"
)

func TestTaskCPUCountsThreadsAndFindsChildren(t *testing.T) {
	child := sleeper(t)
	ns, children := taskCPU(os.Getpid())
	if ns <= 0 {
		t.Errorf("this process has used %d ns of CPU, want > 0", ns)
	}
	if !slices.Contains(children, child.Process.Pid) {
		t.Errorf("children %v do not include the child %d", children, child.Process.Pid)
	}
	if total := cpuNS([]int{os.Getpid()}); total < ns {
		t.Errorf("cpuNS with children %d < the process's own %d", total, ns)
	}
}

func TestCPUNSOfGoneProcessIsZero(t *testing.T) {
	child := exec.Command("true")
	if err := child.Run(); err != nil {
		t.Fatal(err)
	}
	if ns := cpuNS([]int{child.Process.Pid}); ns != 0 {
		t.Errorf("cpuNS of a reaped process = %d, want 0", ns)
	}
}

func TestSettleReturnsForRestingProcessesAndStopsWhenCancelled(t *testing.T) {
	child := sleeper(t)
	if err := settle(context.Background(), []int{child.Process.Pid}); err != nil {
		t.Errorf("settle on a sleeping process: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := settle(ctx, []int{child.Process.Pid}); !errors.Is(err, context.Canceled) {
		t.Errorf("settle with a cancelled context: %v, want context.Canceled", err)
	}
}

// sleeper starts a child that uses no CPU until the test ends.
func sleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		child.Process.Kill()
		child.Wait()
	})
	return child
}
