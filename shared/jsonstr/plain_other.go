//go:build !amd64 || purego

package jsonstr

const haveVector = false

func plainVector(s []byte, stop uint8) (n, leads int) { panic("jsonstr: no vector kernel") }
