package seal

import (
	"bufio"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// newAEAD is AES-256-GCM with key.
func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("workspace cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// chunkNonce fills n with the nonce of chunk number counter (see sealkey.go).
// The key is new for every stream, so a counter never repeats under a key.
func chunkNonce(n []byte, counter uint64, last bool) []byte {
	clear(n)
	binary.BigEndian.PutUint64(n[3:11], counter)
	if last {
		n[11] = 1
	}
	return n
}

// Writer encrypts what is written to it. Close writes the last chunk;
// without it the stream cannot be opened.
type Writer struct {
	w       io.Writer
	aead    cipher.AEAD
	ad      []byte
	buf     []byte
	out     []byte
	nonce   []byte
	counter uint64
	err     error
}

// NewWriter writes the header to w and returns a writer that encrypts
// to pub.
func NewWriter(w io.Writer, pub crypto.PublicKey) (*Writer, error) {
	header, key, err := sealKey(pub)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(header); err != nil {
		return nil, fmt.Errorf("write the workspace header: %w", err)
	}
	ad := sha256.Sum256(header)
	return &Writer{w: w, aead: aead, ad: ad[:], buf: make([]byte, 0, sealChunk), nonce: make([]byte, aead.NonceSize())}, nil
}

func (s *Writer) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if s.err != nil {
			return written, s.err
		}
		// A full chunk is flushed only once more data shows it is not the last.
		if len(s.buf) == sealChunk {
			s.flush(false)
			continue
		}
		n := min(sealChunk-len(s.buf), len(p))
		s.buf = append(s.buf, p[:n]...)
		p, written = p[n:], written+n
	}
	return written, s.err
}

// Close writes the last chunk. It does not close the underlying writer.
func (s *Writer) Close() error {
	if s.err == nil {
		s.flush(true)
		if s.err == nil {
			s.err = errors.New("the sealed workspace is closed")
			return nil
		}
	}
	return s.err
}

func (s *Writer) flush(last bool) {
	s.out = s.aead.Seal(s.out[:0], chunkNonce(s.nonce, s.counter, last), s.buf, s.ad)
	if _, err := s.w.Write(s.out); err != nil {
		s.err = fmt.Errorf("write the sealed workspace: %w", err)
	}
	s.counter++
	s.buf = s.buf[:0]
}

// Reader decrypts a sealed stream, releasing each chunk only once it is
// authenticated. It returns io.EOF only after the last chunk.
type Reader struct {
	r       *bufio.Reader
	aead    cipher.AEAD
	ad      []byte
	in      []byte
	plain   []byte
	nonce   []byte
	counter uint64
	done    bool
	err     error
}

// NewReader reads the header from r and returns a reader of the
// plaintext, or ErrWrongKey when priv cannot open it.
func NewReader(r io.Reader, priv crypto.PrivateKey) (*Reader, error) {
	return newReader(r, priv, sealChunk)
}

// newReader is NewReader with buffers for chunks of at most chunk bytes of
// plaintext: Open, which has the whole sealed value, sizes them to it
// instead of a full chunk's 64 KiB each.
func newReader(r io.Reader, priv crypto.PrivateKey, chunk int) (*Reader, error) {
	chunk = min(chunk, sealChunk)
	br := bufio.NewReaderSize(r, chunk+64)
	header, key, err := openKey(br, priv)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	ad := sha256.Sum256(header)
	return &Reader{r: br, aead: aead, ad: ad[:], in: make([]byte, chunk+aead.Overhead()), nonce: make([]byte, aead.NonceSize())}, nil
}

func (o *Reader) Read(p []byte) (int, error) {
	for len(o.plain) == 0 && !o.done && o.err == nil {
		o.next()
	}
	if len(o.plain) > 0 {
		n := copy(p, o.plain)
		o.plain = o.plain[n:]
		return n, nil
	}
	if o.err != nil {
		return 0, o.err
	}
	return 0, io.EOF
}

// next reads and opens one chunk. A chunk shorter than a full one, or a full
// one the stream ends after, must be the last.
func (o *Reader) next() {
	n, err := io.ReadFull(o.r, o.in)
	last := false
	switch {
	case err == nil:
		if _, err := o.r.Peek(1); errors.Is(err, io.EOF) {
			last = true
		} else if err != nil {
			o.err = fmt.Errorf("read the sealed workspace: %w", err)
			return
		}
	case errors.Is(err, io.ErrUnexpectedEOF):
		last = true
	case errors.Is(err, io.EOF):
		o.err = fmt.Errorf("%w: it ends before its last chunk", ErrWrongKey)
		return
	default:
		o.err = fmt.Errorf("read the sealed workspace: %w", err)
		return
	}
	plain, err := o.aead.Open(o.in[:0], chunkNonce(o.nonce, o.counter, last), o.in[:n], o.ad)
	if err != nil {
		o.err = ErrWrongKey
		return
	}
	o.plain, o.counter, o.done = plain, o.counter+1, last
}
