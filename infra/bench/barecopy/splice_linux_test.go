package main

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// The splice copy is a comparator only if it is a copy: every byte, in
// order, through pipes smaller than the data.
func TestSpliceCopyIsExact(t *testing.T) {
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
		copied <- spliceCopy(dstW, srcR)
		dstW.Close()
	}()
	got, err := io.ReadAll(dstR)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-copied; err != nil {
		t.Fatalf("spliceCopy: %v", err)
	}
	if !bytes.Equal(got, in) {
		t.Errorf("%d bytes came out of %d, or different bytes", len(got), len(in))
	}
}

func TestSpliceCopyRefusesNonFiles(t *testing.T) {
	if err := spliceCopy(io.Discard, bytes.NewReader(nil)); err == nil {
		t.Error("spliceCopy of a non-file: no error")
	}
}
