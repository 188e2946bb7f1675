package seal

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A sealed stream is encrypted to one public key (stream.go writes and
// reads the chunks):
//
//	"GANTRYWS" | version (1) | algorithm (1 byte) | len (uint16, big endian) | encapsulated key (len bytes)
//	chunks: AES-256-GCM of up to 64 KiB of plaintext each
//
// Algorithms: 1 = RSA-OAEP-SHA256 wraps a random 256-bit key; 2, 3, 4 =
// ECDH on P-256, P-384, P-521 with an ephemeral key (its public point is the
// encapsulated key), HKDF-SHA256 derives the AES key. Chunk i's nonce is i
// (big endian, bytes 3–10) and a last-chunk flag (byte 11); every chunk
// authenticates the SHA-256 of the header. A reordered, altered, truncated or
// extended stream fails to open.
const (
	sealMagic   = "GANTRYWS"
	sealVersion = 1
	sealChunk   = 64 << 10
	sealInfo    = "gantry workspace v1"
	minRSABits  = 2048
)

// Key encapsulation algorithms of the header.
const (
	algRSAOAEPSHA256 byte = 1
	algECDHP256      byte = 2
	algECDHP384      byte = 3
	algECDHP521      byte = 4
)

var ecdhAlgs = []struct {
	alg   byte
	curve ecdh.Curve
}{{algECDHP256, ecdh.P256()}, {algECDHP384, ecdh.P384()}, {algECDHP521, ecdh.P521()}}

// ErrWrongKey is returned when a sealed workspace cannot be opened with the
// key given: it was encrypted to another key, or altered.
var ErrWrongKey = errors.New("not sealed to this pool's key, or altered")

// PublicKeyOf returns the public key of a supported pool private key.
func PublicKeyOf(priv crypto.PrivateKey) (crypto.PublicKey, error) {
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		return &k.PublicKey, nil
	case *ecdsa.PrivateKey:
		return &k.PublicKey, nil
	case *ecdh.PrivateKey:
		return k.PublicKey(), nil
	case crypto.Decrypter:
		if pub, ok := k.Public().(*rsa.PublicKey); ok {
			return pub, nil
		}
	}
	return nil, fmt.Errorf("unsupported key type %T: use an RSA or a P-256/384/521 key", priv)
}

// sealKey makes the header and the AES key of a stream sealed to pub.
func sealKey(pub crypto.PublicKey) (header, key []byte, err error) {
	var alg byte
	var encapsulated []byte
	if k, ok := pub.(*ecdsa.PublicKey); ok {
		if pub, err = k.ECDH(); err != nil {
			return nil, nil, fmt.Errorf("pool key: %w", err)
		}
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.Size()*8 < minRSABits {
			return nil, nil, fmt.Errorf("pool key: RSA keys must have at least %d bits", minRSABits)
		}
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, nil, fmt.Errorf("generate the workspace key: %w", err)
		}
		alg = algRSAOAEPSHA256
		if encapsulated, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, k, key, []byte(sealInfo)); err != nil {
			return nil, nil, fmt.Errorf("encrypt the workspace key: %w", err)
		}
	case *ecdh.PublicKey:
		for _, a := range ecdhAlgs {
			if k.Curve() == a.curve {
				alg = a.alg
			}
		}
		if alg == 0 {
			return nil, nil, errors.New("pool key: unsupported curve: use P-256, P-384 or P-521")
		}
		eph, err := k.Curve().GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, fmt.Errorf("generate the ephemeral key: %w", err)
		}
		shared, err := eph.ECDH(k)
		if err != nil {
			return nil, nil, fmt.Errorf("key agreement: %w", err)
		}
		if key, err = deriveKey(shared, eph.PublicKey().Bytes(), k.Bytes()); err != nil {
			return nil, nil, err
		}
		encapsulated = eph.PublicKey().Bytes()
	default:
		return nil, nil, fmt.Errorf("pool key: unsupported key type %T: use an RSA or a P-256/384/521 key", pub)
	}
	header = append([]byte(sealMagic), sealVersion, alg)
	header = binary.BigEndian.AppendUint16(header, uint16(len(encapsulated)))
	return append(header, encapsulated...), key, nil
}

// deriveKey is the AES key of an ECDH shared secret, bound to both public
// keys: the ephemeral one first, then the pool's.
func deriveKey(shared, ephemeral, recipient []byte) ([]byte, error) {
	salt := append(append([]byte(nil), ephemeral...), recipient...)
	key, err := hkdf.Key(sha256.New, shared, salt, sealInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("derive the workspace key: %w", err)
	}
	return key, nil
}

// openKey reads the header from r and recovers the AES key with priv.
func openKey(r io.Reader, priv crypto.PrivateKey) (header, key []byte, err error) {
	fixed := make([]byte, len(sealMagic)+4)
	if _, err := io.ReadFull(r, fixed); err != nil {
		return nil, nil, fmt.Errorf("read the workspace header: %w", err)
	}
	if string(fixed[:len(sealMagic)]) != sealMagic {
		return nil, nil, errors.New("not a saved Gantry workspace")
	}
	if v := fixed[len(sealMagic)]; v != sealVersion {
		return nil, nil, fmt.Errorf("saved workspace version %d is not supported", v)
	}
	alg := fixed[len(sealMagic)+1]
	encapsulated := make([]byte, binary.BigEndian.Uint16(fixed[len(sealMagic)+2:]))
	if _, err := io.ReadFull(r, encapsulated); err != nil {
		return nil, nil, fmt.Errorf("read the workspace header: %w", err)
	}
	header = append(fixed, encapsulated...)

	if k, ok := priv.(*ecdsa.PrivateKey); ok {
		if priv, err = k.ECDH(); err != nil {
			return nil, nil, fmt.Errorf("pool key: %w", err)
		}
	}
	switch k := priv.(type) {
	case *ecdh.PrivateKey:
		for _, a := range ecdhAlgs {
			if a.alg == alg && k.Curve() == a.curve {
				eph, err := a.curve.NewPublicKey(encapsulated)
				if err != nil {
					return nil, nil, fmt.Errorf("the workspace header: %w", err)
				}
				shared, err := k.ECDH(eph)
				if err != nil {
					return nil, nil, fmt.Errorf("key agreement: %w", err)
				}
				key, err := deriveKey(shared, eph.Bytes(), k.PublicKey().Bytes())
				return header, key, err
			}
		}
	case crypto.Decrypter:
		if _, isRSA := k.Public().(*rsa.PublicKey); isRSA && alg == algRSAOAEPSHA256 {
			key, err := k.Decrypt(rand.Reader, encapsulated, &rsa.OAEPOptions{Hash: crypto.SHA256, Label: []byte(sealInfo)})
			if err != nil || len(key) != 32 {
				return nil, nil, ErrWrongKey
			}
			return header, key, nil
		}
	default:
		return nil, nil, fmt.Errorf("pool key: unsupported key type %T", priv)
	}
	return nil, nil, fmt.Errorf("%w: it was encrypted with algorithm %d", ErrWrongKey, alg)
}
