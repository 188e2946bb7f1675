package api

import (
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// CompressMinBytes is the size from which the handlers compress a
// response the client accepts compressed: a smaller one (a run, a stack, a
// short page) costs more CPU to gzip than its saved bytes are worth.
const CompressMinBytes = 4096

// StrictJSON returns the JSON codecs of the API's handlers (for
// connect.WithCodec, under both names Connect knows JSON by). Unlike
// Connect's own, they refuse what the API does not define instead of
// dropping it: an unknown field, and an unknown enum name, which Connect's
// codec would read as the enum's zero (UNSPECIFIED, taken as the default)
// while an unknown number is refused. The binary protobuf codec keeps
// skipping unknown fields, for generated clients of a newer API.
func StrictJSON() []connect.HandlerOption {
	return []connect.HandlerOption{
		connect.WithCodec(strictJSON{name: "json"}),
		connect.WithCodec(strictJSON{name: "json; charset=utf-8"}),
	}
}

type strictJSON struct{ name string }

func (c strictJSON) Name() string { return c.name }

func (c strictJSON) Marshal(message any) ([]byte, error) {
	m, ok := message.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a protobuf message", message)
	}
	return protojson.MarshalOptions{}.Marshal(m)
}

func (c strictJSON) Unmarshal(data []byte, message any) error {
	m, ok := message.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a protobuf message", message)
	}
	if len(data) == 0 {
		return errors.New("zero-length payload is not a valid JSON object")
	}
	if err := (protojson.UnmarshalOptions{}).Unmarshal(data, m); err != nil {
		return fmt.Errorf("the request: %w", err)
	}
	return nil
}
