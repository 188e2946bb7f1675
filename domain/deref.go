package domain

import "reflect"

// Deref returns the value a non-nil pointer in v points to, when that value
// also satisfies E; otherwise v unchanged. Aggregates switch on value types,
// but a JSON decoder naturally produces *RunQueued rather than RunQueued: without
// this, Apply would silently ignore every decoded event.
func Deref[E any](v E) E {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return v
	}
	if d, ok := rv.Elem().Interface().(E); ok {
		return d
	}
	return v
}
