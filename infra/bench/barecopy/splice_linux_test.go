package main

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// The splice and tee copies are comparators only if they are copies: every
// byte, in order, through pipes smaller than the data.
func TestSpliceCopyIsExact(t *testing.T) { testCopyIsExact(t, spliceCopy) }

func TestTeeCopyIsExact(t *testing.T) { testCopyIsExact(t, teeCopy) }

func testCopyIsExact(t *testing.T, copyFn func(io.Writer, io.Reader) error) {
	in := make([]byte, 3<<20+17)
	for i := range in {
		in[i] = byte(rand.UintN(256))
	}
	srcR, srcW, err := pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	dstR, dstW, err := pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		srcW.Write(in)
		srcW.Close()
	}()
	copied := make(chan error, 1)
	go func() {
		copied <- copyFn(dstW, srcR)
		dstW.Close()
	}()
	got, err := io.ReadAll(dstR)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-copied; err != nil {
		t.Fatalf("copy: %v", err)
	}
	if !bytes.Equal(got, in) {
		t.Errorf("%d bytes came out of %d, or different bytes", len(got), len(in))
	}
}

func TestSpliceCopyRefusesNonFiles(t *testing.T) {
	if err := spliceCopy(io.Discard, bytes.NewReader(nil)); err == nil {
		t.Error("spliceCopy of a non-file: no error")
	}
	if err := teeCopy(io.Discard, bytes.NewReader(nil)); err == nil {
		t.Error("teeCopy of a non-file: no error")
	}
}
