package assets

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/errs"
)

// view returns the API view of a with fresh signed URLs.
func (m *Module) view(a *Asset) *AssetView {
	u, exp := m.SignedURL(a.ID, VariantOriginal)
	v := &AssetView{
		ID: a.ID, UserID: a.UserID, Purpose: a.Purpose, FileName: a.FileName,
		SizeBytes: a.SizeBytes, MIMEType: a.MIMEType, SHA256: a.SHA256,
		Width: a.Width, Height: a.Height, CreatedAt: a.CreatedAt,
		DownloadURL: u, URLExpiresAt: exp,
	}
	if a.PreviewPath != nil {
		v.PreviewURL, _ = m.SignedURL(a.ID, VariantPreview)
	}
	return v
}

func (m *Module) upload(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	ct, _, _ := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if ct != fiber.MIMEMultipartForm {
		return errs.E(errs.ErrUnsupportedMediaType, "Send the file as multipart/form-data in the field \"file\".")
	}
	purpose := c.FormValue("purpose", PurposeUpload)
	if purpose != PurposeUpload && purpose != PurposeReference {
		return errs.Invalid("purpose", "enum", "Purpose must be upload or reference.")
	}
	fh, err := c.FormFile("file")
	if err != nil {
		return errs.Invalid("file", "required", "Send the file in the multipart field \"file\".")
	}
	f, err := fh.Open()
	if err != nil {
		return fmt.Errorf("open uploaded file: %w", err)
	}
	defer f.Close()
	a, err := m.ingest(c.UserContext(), p.UserID, purpose, fh.Filename, fh.Header.Get(fiber.HeaderContentType), f)
	if err != nil {
		return err
	}
	c.Status(fiber.StatusCreated)
	return m.guard.JSON(c, authz.ActionRead, m.view(a))
}

func (m *Module) get(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	a, err := m.find(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	out, err := m.guard.View(c.UserContext(), p, authz.ActionRead, m.view(a))
	if errs.Kind(err) == errs.ErrForbidden {
		// A role limited to its own rows learns nothing about others'.
		return errs.Ef(errs.ErrNotFound, "There is no asset %s.", a.ID)
	}
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (m *Module) delete(c *fiber.Ctx) error {
	p, err := authz.Require(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	a, err := m.find(ctx, c.Params("id"))
	if err != nil {
		return err
	}
	d, err := m.guard.Check(ctx, p, authz.ActionDelete, a.UserID, []string{a.contentCategory(), "user.content.upload.metadata"})
	if errs.Kind(err) == errs.ErrForbidden {
		// A caller who may not even see the asset learns nothing of it.
		if _, rerr := m.guard.Check(ctx, p, authz.ActionRead, a.UserID, []string{"user.content.upload.mime_type"}); rerr != nil {
			return errs.Ef(errs.ErrNotFound, "There is no asset %s.", a.ID)
		}
	}
	if err != nil {
		return err
	}
	if len(d.Redact) > 0 {
		return errs.E(errs.ErrForbidden, "your role may not delete this data")
	}
	if err := m.remove(ctx, a); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (m *Module) download(c *fiber.Ctx) error {
	id := c.Params("id")
	variant := c.Query("variant", VariantOriginal)
	exp, err := strconv.ParseInt(c.Query("exp"), 10, 64)
	if err != nil || !m.verify(id, variant, exp, c.Query("sig")) {
		return errs.E(errs.ErrForbidden, "The download link is invalid or has expired; ask for a fresh one.")
	}
	a, err := m.find(c.UserContext(), id)
	if err != nil {
		return err
	}
	rel, typ, name := a.StoragePath, a.MIMEType, a.FileName
	switch variant {
	case VariantOriginal:
	case VariantPreview:
		if a.PreviewPath == nil {
			return errs.Ef(errs.ErrNotFound, "Asset %s has no preview.", a.ID)
		}
		rel, typ, name = *a.PreviewPath, MIMEPNG, "preview-"+a.FileName+".png"
	default:
		return errs.Ef(errs.ErrNotFound, "Asset %s has no variant %s.", a.ID, variant)
	}
	// The body is read after the handler returns, so the reader must not
	// end with the request's context.
	f, err := m.files.open(context.WithoutCancel(c.UserContext()), rel)
	if errors.Is(err, errNotExist) {
		return errs.Ef(errs.ErrNotFound, "There is no asset %s.", a.ID)
	}
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, typ)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderContentDisposition, mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	c.Set(fiber.HeaderCacheControl, "private, no-store")
	// fasthttp closes f once the body is sent.
	return c.SendStream(f, int(f.Size()))
}
