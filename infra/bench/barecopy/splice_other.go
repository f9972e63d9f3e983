//go:build !linux

package main

import (
	"errors"
	"io"
	"os"
)

func pipe(bool) (r, w *os.File, err error) { return os.Pipe() }

func spliceCopy(io.Writer, io.Reader) error { return errors.New("-splice needs Linux") }

func teeCopy(io.Writer, io.Reader) error { return errors.New("-tee needs Linux") }
