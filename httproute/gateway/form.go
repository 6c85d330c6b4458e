package gateway

import (
	"bytes"
	"errors"
	"io"
	"mime/multipart"
)

// readFormModel reads a multipart/form-data body until its "model" field,
// at most limit bytes. It returns the model and every byte read, to be
// sent on ahead of the rest of body unchanged.
func readFormModel(body io.Reader, boundary string, limit int64) (string, []byte, error) {
	var rec bytes.Buffer
	lr := &io.LimitedReader{R: body, N: limit + 1}
	mr := multipart.NewReader(io.TeeReader(lr, &rec), boundary)
	for {
		p, err := mr.NextPart()
		if lr.N <= 0 {
			return "", rec.Bytes(), errTooLarge
		}
		if err == io.EOF {
			return "", rec.Bytes(), errNoModel
		}
		if err != nil {
			return "", rec.Bytes(), errMalformedForm
		}
		if p.FormName() != "model" {
			if _, err := io.Copy(io.Discard, p); err != nil {
				if lr.N <= 0 {
					return "", rec.Bytes(), errTooLarge
				}
				return "", rec.Bytes(), errMalformedForm
			}
			continue
		}
		v, err := io.ReadAll(io.LimitReader(p, 1024))
		if err != nil {
			return "", rec.Bytes(), errMalformedForm
		}
		return string(bytes.TrimSpace(v)), rec.Bytes(), nil
	}
}

var errMalformedForm = errors.New("the body is not valid multipart/form-data")
