package statebackend

// A small scanner for HCL native syntax, enough to find block headers and
// braces: it skips comments, quoted strings (with their template
// interpolations) and heredocs, which may contain anything.

type tokenKind int

const (
	tokIdent   tokenKind = iota // an identifier
	tokString                   // a quoted string; text is its literal content, roughly
	tokOpen                     // {
	tokClose                    // }
	tokNewline                  // end of a line outside strings and comments
	tokOther                    // anything else (operators, numbers, brackets)
)

type token struct {
	kind tokenKind
	text string
	line int
}

type scanner struct {
	src  []byte
	pos  int
	line int
	out  []token
}

func tokenize(src []byte) []token {
	s := &scanner{src: src, line: 1}
	s.scan(false)
	return s.out
}

func (s *scanner) peek(off int) byte {
	if s.pos+off < len(s.src) {
		return s.src[s.pos+off]
	}
	return 0
}

func (s *scanner) emit(kind tokenKind, text string, line int) {
	s.out = append(s.out, token{kind: kind, text: text, line: line})
}

// scan tokenizes until the end of input, or, inside a template
// interpolation (nested), until the '}' that closes it.
func (s *scanner) scan(nested bool) {
	depth := 0
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch {
		case c == '\n':
			s.emit(tokNewline, "", s.line)
			s.line++
			s.pos++
		case c == '#' || c == '/' && s.peek(1) == '/':
			for s.pos < len(s.src) && s.src[s.pos] != '\n' {
				s.pos++
			}
		case c == '/' && s.peek(1) == '*':
			s.pos += 2
			for s.pos < len(s.src) && !(s.src[s.pos] == '*' && s.peek(1) == '/') {
				if s.src[s.pos] == '\n' {
					s.line++
				}
				s.pos++
			}
			s.pos += 2
		case c == '"':
			line := s.line
			s.emit(tokString, s.quoted(), line)
		case c == '<' && s.peek(1) == '<' && s.heredoc():
		case c == '{':
			depth++
			s.emit(tokOpen, "", s.line)
			s.pos++
		case c == '}':
			if nested && depth == 0 {
				s.pos++
				return
			}
			depth--
			s.emit(tokClose, "", s.line)
			s.pos++
		case isIdentStart(c):
			start := s.pos
			for s.pos < len(s.src) && isIdentPart(s.src[s.pos]) {
				s.pos++
			}
			s.emit(tokIdent, string(s.src[start:s.pos]), s.line)
		case c == ' ' || c == '\t' || c == '\r':
			s.pos++
		default:
			s.emit(tokOther, string(c), s.line)
			s.pos++
		}
	}
}

// quoted consumes a quoted string starting at '"' and returns its literal
// parts. Interpolations ("${…}", "%{…}") are scanned as nested expressions
// whose tokens are dropped: a brace in them must not count.
func (s *scanner) quoted() string {
	s.pos++ // opening quote
	var text []byte
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch {
		case c == '"':
			s.pos++
			return string(text)
		case c == '\n':
			return string(text) // unterminated: terraform will complain
		case c == '\\':
			if s.pos+1 < len(s.src) {
				text = append(text, s.src[s.pos+1])
			}
			s.pos += 2
		case (c == '$' || c == '%') && s.peek(1) == c && s.peek(2) == '{':
			text = append(text, c, '{')
			s.pos += 3
		case (c == '$' || c == '%') && s.peek(1) == '{':
			s.pos += 2
			s.skipNested()
		default:
			text = append(text, c)
			s.pos++
		}
	}
	return string(text)
}

// skipNested scans an interpolation up to its closing brace and drops its tokens.
func (s *scanner) skipNested() {
	n := len(s.out)
	s.scan(true)
	s.out = s.out[:n]
}

// heredoc consumes "<<ID" or "<<-ID" and the lines up to the one that is
// just ID (after indentation). It reports false, consuming nothing, when the
// '<<' does not start a heredoc.
func (s *scanner) heredoc() bool {
	p := s.pos + 2
	if p < len(s.src) && s.src[p] == '-' {
		p++
	}
	start := p
	for p < len(s.src) && isIdentPart(s.src[p]) {
		p++
	}
	if p == start || !isIdentStart(s.src[start]) {
		return false
	}
	marker := string(s.src[start:p])
	for p < len(s.src) && s.src[p] != '\n' {
		if s.src[p] != ' ' && s.src[p] != '\t' && s.src[p] != '\r' {
			return false
		}
		p++
	}
	// p is at the newline ending the opening line.
	for p < len(s.src) {
		p++ // past the newline
		s.line++
		lineStart := p
		for p < len(s.src) && s.src[p] != '\n' {
			p++
		}
		if trimSpace(string(s.src[lineStart:p])) == marker {
			s.pos = p
			return true
		}
	}
	s.pos = p
	return true
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '-' }
