package projections

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrInvalidPageToken is matched by the error of a List query given a page
// token it did not hand out (for this list).
var ErrInvalidPageToken = errors.New("the page token is invalid")

// pageKey is the sort key of the last row of a page: where the next page
// starts. List names the listing, so that a token of one list is refused
// by another.
type pageKey struct {
	List string     `json:"l"`
	Name string     `json:"n,omitempty"`
	Time *time.Time `json:"t,omitempty"`
	ID   string     `json:"i"`
}

// encodePageToken returns the opaque token of k: base64 of its JSON.
func encodePageToken(k pageKey) string {
	data, err := json.Marshal(k)
	if err != nil {
		// A struct of strings and a time always marshals.
		panic(fmt.Sprintf("encode page token: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(data)
}

// decodePageToken parses a token of the listing list; needTime says whether
// its key includes a time.
func decodePageToken(token, list string, needTime bool) (pageKey, error) {
	data, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return pageKey{}, fmt.Errorf("%w: not base64", ErrInvalidPageToken)
	}
	var k pageKey
	if err := json.Unmarshal(data, &k); err != nil {
		return pageKey{}, fmt.Errorf("%w: %v", ErrInvalidPageToken, err)
	}
	switch {
	case k.List != list:
		return pageKey{}, fmt.Errorf("%w: it belongs to another list", ErrInvalidPageToken)
	case k.ID == "":
		return pageKey{}, fmt.Errorf("%w: no position", ErrInvalidPageToken)
	case needTime != (k.Time != nil):
		return pageKey{}, fmt.Errorf("%w: wrong position", ErrInvalidPageToken)
	}
	return k, nil
}
