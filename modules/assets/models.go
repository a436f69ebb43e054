package assets

import (
	"time"

	"github.com/uptrace/bun"
)

// Asset is one row of assets: a stored file's metadata. The bytes are in
// the files dir at StoragePath.
type Asset struct {
	bun.BaseModel `bun:"table:assets" seed:"typical=5,heavy=50"`

	ID     string `bun:"id,pk" privacy:"user.content.upload.metadata"`
	UserID string `bun:"user_id,notnull" privacy:"user.unique_id,subject=user"`
	// Purpose is upload, reference or generated.
	Purpose string `bun:"purpose,notnull" privacy:"user.content.upload.metadata" seed:"upload"`
	// FileName is the sanitized name, for display only.
	FileName  string `bun:"file_name,notnull" privacy:"user.content.upload.file_name"`
	SizeBytes int64  `bun:"size_bytes,notnull" privacy:"user.content.upload.file_size"`
	// MIMEType is the sniffed type, never the one the client sent.
	MIMEType string `bun:"mime_type,notnull" privacy:"user.content.upload.mime_type" seed:"image/png"`
	SHA256   string `bun:"sha256,notnull" privacy:"user.content.upload.metadata"`
	// Width and Height are the pixel dimensions of images, 0 for videos.
	Width  int64 `bun:"width,notnull" privacy:"user.content.upload.metadata"`
	Height int64 `bun:"height,notnull" privacy:"user.content.upload.metadata"`
	// StoragePath is relative to the files dir and built from ids only.
	StoragePath string `bun:"storage_path,notnull" privacy:"user.content.upload.storage_path"`
	// PreviewPath is the PNG preview of an image, nil for videos.
	PreviewPath *string   `bun:"preview_path" privacy:"user.content.upload.storage_path"`
	CreatedAt   time.Time `bun:"created_at,notnull" privacy:"user.content.upload.metadata,collected"`
}

// contentCategory is the data category of the asset's bytes.
func (a *Asset) contentCategory() string {
	if a.Purpose == PurposeGenerated {
		return "user.content.generated_media"
	}
	return "user.content.upload"
}

// AssetView is an asset as the API shows it. The download URLs are tagged
// with the category of the bytes they reach, since holding one is holding
// the file; they are made fresh for each answer and never stored.
type AssetView struct {
	ID        string    `json:"id" privacy:"user.content.upload.metadata"`
	UserID    string    `json:"user_id" privacy:"user.unique_id"`
	Purpose   string    `json:"purpose" privacy:"user.content.upload.metadata"`
	FileName  string    `json:"file_name" privacy:"user.content.upload.file_name"`
	SizeBytes int64     `json:"size_bytes" privacy:"user.content.upload.file_size"`
	MIMEType  string    `json:"mime_type" privacy:"user.content.upload.mime_type"`
	SHA256    string    `json:"sha256" privacy:"user.content.upload.metadata"`
	Width     int64     `json:"width" privacy:"user.content.upload.metadata"`
	Height    int64     `json:"height" privacy:"user.content.upload.metadata"`
	CreatedAt time.Time `json:"created_at" privacy:"user.content.upload.metadata"`
	// DownloadURL and PreviewURL are signed and expire at URLExpiresAt.
	DownloadURL  string    `json:"download_url" privacy:"user.content.upload"`
	PreviewURL   string    `json:"preview_url,omitempty" privacy:"user.content.upload"`
	URLExpiresAt time.Time `json:"url_expires_at" privacy:"system.operations"`
}

// OwnerID implements authz.Owned.
func (v *AssetView) OwnerID() string { return v.UserID }

// uploadForm documents the multipart body of POST /v1/assets.
type uploadForm struct {
	File    string `form:"file" json:"file"`
	Purpose string `form:"purpose" json:"purpose,omitempty"`
}

// downloadQuery documents the query of a signed download URL.
type downloadQuery struct {
	Variant string `query:"variant"`
	Exp     int64  `query:"exp"`
	Sig     string `query:"sig"`
}
