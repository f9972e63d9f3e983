// Package eventtest holds helpers for the tests of code that encodes,
// stores or sends events and sessions.
package eventtest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// FillNonZero sets every exported field reachable from ptr, which points
// to a struct, to a value that is not its zero value and, where the kind
// allows, differs from field to field (strings carry the field's path), so
// that an encoder, decoder or store that drops or swaps a field shows in a
// round trip. Times are at; a json.RawMessage is {"k":1}. A field of a kind
// it does not know fails the test: teach it rather than skip the field.
func FillNonZero(tb testing.TB, ptr any, at time.Time) {
	tb.Helper()
	v := reflect.ValueOf(ptr)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		tb.Fatalf("FillNonZero wants a pointer to a struct, not %T", ptr)
	}
	fill(tb, v.Elem(), v.Elem().Type().Name(), at)
}

func fill(tb testing.TB, v reflect.Value, path string, at time.Time) {
	tb.Helper()
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(at))
		return
	case reflect.TypeFor[json.RawMessage]():
		v.SetBytes([]byte(`{"k":1}`))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("v-" + path)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(len(path))%100 + 7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(len(path)) + 0.25)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(tb, v.Elem(), path, at)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(tb, v.Index(i), fmt.Sprintf("%s[%d]", path, i), at)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				fill(tb, v.Field(i), path+"."+f.Name, at)
			}
		}
	default:
		tb.Fatalf("%s: FillNonZero does not know %s; teach it", path, v.Type())
	}
	if v.IsZero() {
		tb.Fatalf("%s is still zero", path)
	}
}
