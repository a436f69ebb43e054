package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/shopspring/decimal"
	"github.com/uptrace/bun"

	"github.com/stewardhq/steward/analytics/attribution"
	"github.com/stewardhq/steward/analytics/ingest"
	"github.com/stewardhq/steward/consent"
	"github.com/stewardhq/steward/governance/audit"
	"github.com/stewardhq/steward/governance/decisionlog"
	"github.com/stewardhq/steward/governance/privacy"
	"github.com/stewardhq/steward/governance/retention"
	"github.com/stewardhq/steward/internal/authz"
	"github.com/stewardhq/steward/internal/blob"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/leader"
	"github.com/stewardhq/steward/internal/module"
	"github.com/stewardhq/steward/internal/sqlstore"
	"github.com/stewardhq/steward/internal/web"
	"github.com/stewardhq/steward/modules/accounts"
	"github.com/stewardhq/steward/modules/assets"
	"github.com/stewardhq/steward/modules/billing"
	"github.com/stewardhq/steward/modules/generation"
	"github.com/stewardhq/steward/modules/risk"
	"github.com/stewardhq/steward/modules/support"
	"github.com/stewardhq/steward/policies"
)

// defaultProducts is the catalog served when no other is configured.
//
//go:embed defaults/products.json
var defaultProducts []byte

// wired holds the modules whose methods other parts of main call.
type wired struct {
	accounts    *accounts.Module
	billing     *billing.Module
	assets      *assets.Module
	consent     *consent.Module
	events      *ingest.Module
	attribution *attribution.Module
	privacy     *privacy.Module
	retention   *retention.Module
	audit       *audit.Module
}

// assemble wires a server on opened stores, with now as the clock of every
// module that keeps time. Everything is built here, in one pass and in
// dependency order, each part handed the parts it uses once they exist:
// the stores' schema, the decision log and the policy engine, the product
// modules (consent before accounts, billing and risk before accounts), the
// data map over their models, retention before the audit that reads it,
// privacy requests, and last the HTTP app that mounts them all. Nothing is
// handed a function that is filled in later.
//
// The server owns st from then on: it closes them on failure and on close.
// Tests use it to run the same wiring on stores and clocks of their own.
func assemble(ctx context.Context, cfg config.Config, log *slog.Logger, st *stores, now func() time.Time) (_ *server, err error) {
	s := &server{cfg: cfg, log: log, stores: st, now: now}
	defer func() {
		if err != nil {
			_ = s.close(context.Background())
		}
	}()
	if st.files == nil {
		// Stores opened apart (tests assemble their own) bring no file
		// store: open the one the configuration names.
		if st.files, err = blob.Open(ctx, blobURL(cfg)); err != nil {
			return nil, fmt.Errorf("open file store (STEWARD_BLOB_URL): %w", err)
		}
	}
	if cfg.AutoMigrate {
		if err := st.migrateUp(ctx); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
	} else if err := st.requireSQLSchema(ctx); err != nil {
		return nil, err
	}
	s.decisions, err = decisionlog.New(decisionlog.Config{}, decisionlog.Deps{DB: st.sql, Logger: log.With(slog.String("component", "decisionlog"))})
	if err != nil {
		return nil, err
	}
	opts := policies.Options{Logger: log.With(slog.String("component", "policies")), Recorder: s.decisions.Record}
	if cfg.PolicyDir != "" {
		s.engine, err = policies.LoadBundle(ctx, os.DirFS(cfg.PolicyDir), opts)
	} else {
		s.engine, err = policies.New(ctx, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("policy engine: %w", err)
	}
	if cfg.PolicyDir != "" {
		log.InfoContext(ctx, "policies loaded from a bundle", slog.String("policy_dir", cfg.PolicyDir), slog.String("revision", s.engine.Revision()))
	}
	guard := authz.NewGuard(s.engine)
	if s.modules, err = s.buildModules(ctx, guard); err != nil {
		return nil, err
	}
	if err := s.buildApp(); err != nil {
		return nil, err
	}
	return s, nil
}

// buildModules builds every module with its dependencies, each after the
// modules it uses. The order of the returned list is the start order;
// stops run in reverse, so generation (which writes assets and settles
// credits) stops before the modules it uses.
func (s *server) buildModules(ctx context.Context, guard *authz.Guard) ([]module.Module, error) {
	cfg, db := s.cfg, s.stores.sql
	logFor := func(name string) *slog.Logger { return s.log.With(slog.String("module", name)) }

	key, err := signingKey(ctx, db, cfg.SigningKey)
	if err != nil {
		return nil, err
	}

	// One instance of those sharing the SQL store runs the periodic jobs
	// (the session purge, retention, the expiry of access packages).
	s.leader, err = leader.New(leader.Config{CheckInterval: cfg.LeaderCheckInterval}, leader.Deps{DB: db, Logger: logFor("leader")})
	if err != nil {
		return nil, err
	}

	// Consent comes before accounts: a visitor's choices follow them into
	// the account they sign in to, and the sign-in is recorded in both
	// stores (the SQL record decides exports and erasures, the warehouse
	// copy attribution).
	consentKey, err := instanceKey(ctx, db, consentKeySetting)
	if err != nil {
		return nil, err
	}
	consentMod, err := consent.New(consent.Config{
		PolicyVersion: cfg.ConsentPolicyVersion,
		BannerVersion: cfg.ConsentBannerVersion,
		// A choice made under the policy before the current one counts
		// until the grace period ends.
		PreviousPolicyVersion: cfg.ConsentPreviousPolicyVersion,
		PreviousPolicyUntil:   cfg.ConsentPreviousPolicyUntil,
		ValidFor:              cfg.ConsentValidFor,
		CookieSecure:          cfg.SecureCookies(),
		HashKey:               consentKey,
		TrustedProxies:        cfg.TrustedProxies,
	}, consent.Deps{
		DB:        db,
		Warehouse: s.stores.warehouse,
		Logger:    logFor("consent"),
		Now:       s.now,
	})
	if err != nil {
		return nil, fmt.Errorf("consent: %w", err)
	}

	// Billing needs no other module: the buyer's email comes with the
	// request's principal.
	products, err := loadCatalog(cfg.Catalog)
	if err != nil {
		return nil, err
	}
	billingMod, err := billing.New(billing.Config{
		Products:        products,
		SuccessURL:      cfg.BaseURL + "/billing/success",
		CancelURL:       cfg.BaseURL + "/billing/cancel",
		PortalReturnURL: cfg.BaseURL + "/",
		Stripe:          billing.StripeConfig{SecretKey: cfg.StripeSecretKey, WebhookSecret: cfg.StripeWebhookSecret, APIURL: cfg.StripeAPIURL},
		Creem:           billing.CreemConfig{APIKey: cfg.CreemAPIKey, WebhookSecret: cfg.CreemWebhookSecret, APIURL: cfg.CreemAPIURL},
	}, billing.Deps{DB: db, Guard: guard, Logger: logFor("billing")})
	if err != nil {
		return nil, fmt.Errorf("billing: %w", err)
	}

	riskMod, err := risk.New(risk.Config{}, risk.Deps{
		DB:      db,
		Logger:  logFor("risk"),
		Guard:   guard,
		Rewards: billingMod.Ledger(),
		Now:     s.now,
	})
	if err != nil {
		return nil, fmt.Errorf("risk: %w", err)
	}

	accountsMod, err := accounts.New(accounts.Config{
		GoogleClientID: cfg.GoogleClientID,
		GoogleJWKSURL:  cfg.GoogleJWKSURL,
		CookieSecure:   cfg.SecureCookies(),
		Dev:            cfg.Dev,
		Env:            cfg.Env,
		// The pages at / are where browsers sign in and land.
		AfterSignInURL: "/",
		SignInURL:      "/",
		// Beacons cannot set the CSRF header; events carry no session
		// authority (they are consent-gated analytics, not account writes).
		CSRFExemptPaths: []string{"/v1/events"},
	}, accounts.Deps{
		Now:      s.now,
		DB:       db,
		Logger:   logFor("accounts"),
		Guard:    guard,
		Abuse:    riskMod,
		Leader:   s.leader,
		OnSignIn: consentMod.OnSignIn,
		Balance: func(ctx context.Context, userID string) (accounts.Balance, error) {
			credits, status, err := billingMod.AccountSummary(ctx, userID)
			return accounts.Balance{Credits: credits, SubscriptionStatus: status}, err
		},
	})
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}

	// Uploads and generated media live in the folder files of the shared
	// file store, as they did in the data dir.
	assetFiles, err := s.stores.files.Sub("files")
	if err != nil {
		return nil, fmt.Errorf("assets: %w", err)
	}
	assetsMod, err := assets.New(assets.Config{SigningKey: key},
		assets.Deps{DB: db, Guard: guard, Logger: logFor("assets"), Now: s.now, Files: assetFiles})
	if err != nil {
		return nil, fmt.Errorf("assets: %w", err)
	}

	providers := map[string]generation.Provider{generation.LocalProviderName: generation.LocalProvider{}}
	if cfg.ProviderURL != "" {
		remote, err := generation.NewHTTPProvider(generation.HTTPProviderConfig{
			BaseURL:      cfg.ProviderURL,
			APIKey:       cfg.ProviderKey,
			AssetBaseURL: cfg.BaseURL,
		})
		if err != nil {
			return nil, fmt.Errorf("generation provider: %w", err)
		}
		providers["remote"] = remote
	}
	generationMod, err := generation.New(generation.Config{Models: generation.DefaultModels()}, generation.Deps{
		DB:        db,
		Guard:     guard,
		Safety:    s.engine,
		Credits:   billingMod.Ledger(),
		Assets:    assetsMod,
		Providers: providers,
		Logger:    logFor("generation"),
		Now:       s.now,
	})
	if err != nil {
		return nil, fmt.Errorf("generation: %w", err)
	}

	supportMod, err := support.New(support.Config{}, support.Deps{
		DB:          db,
		Guard:       guard,
		Attachments: attachments{assetsMod},
		Logger:      logFor("support"),
	})
	if err != nil {
		return nil, fmt.Errorf("support: %w", err)
	}

	eventsMod, err := ingest.New(ingest.Config{
		SpoolDir:       filepath.Join(cfg.DataDir, "spool", "events"),
		SpoolMaxBytes:  cfg.EventsSpoolMaxBytes,
		TrustedProxies: cfg.TrustedProxies,
	}, ingest.Deps{
		Warehouse: s.stores.warehouse,
		Policy:    s.engine,
		Consent:   consentMod,
		Logger:    logFor("events"),
		Now:       s.now,
	})
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}

	attributionMod, err := attribution.New(attribution.Config{
		MaxSpan:        time.Duration(cfg.AnalyticsMaxSpanDays) * 24 * time.Hour,
		MaxQueryTime:   cfg.AnalyticsMaxQueryTime,
		MaxQueryMemory: cfg.AnalyticsMaxQueryMemory,
		MaxConcurrent:  cfg.AnalyticsMaxConcurrent,
	}, attribution.Deps{
		Warehouse: s.stores.warehouse,
		Guard:     guard,
		// Purchases are netted of refunds billing recorded; attribution
		// reads them through this function, not billing's tables.
		Refunds: func(ctx context.Context, from, to time.Time) ([]attribution.Refund, error) {
			rs, err := billingMod.Refunds(ctx, from, to)
			if err != nil {
				return nil, err
			}
			out := make([]attribution.Refund, len(rs))
			for i, r := range rs {
				// Billing keeps amounts in hundredths of the currency.
				out[i] = attribution.Refund{OrderID: r.OrderID, Amount: decimal.New(r.RefundedCents, -2), Currency: r.Currency}
			}
			return out, nil
		},
		Logger: logFor("attribution"),
	})
	if err != nil {
		return nil, fmt.Errorf("attribution: %w", err)
	}

	// Modules mount, start and take part in privacy requests in the order
	// of this list, whatever order they are built in.
	mods := []module.Module{accountsMod, riskMod, billingMod, assetsMod, generationMod, supportMod, consentMod, eventsMod, attributionMod}

	// The data map is read from the models of the modules built so far and
	// of the governance modules built from it below; retention, the audit
	// and privacy requests read it through Build.
	s.dataMap = dataMap{stores: s.stores, engine: s.engine, sources: dataSources(mods)}

	retentionMod, err := retention.New(retention.Config{Interval: cfg.RetentionInterval}, retention.Deps{
		DB: db, Warehouse: s.stores.warehouse, DataMap: s.dataMap.Build, Leader: s.leader, Logger: logFor("retention"), Now: s.now,
	})
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}

	auditMod, err := audit.New(audit.Config{RetentionInterval: cfg.RetentionInterval}, audit.Deps{
		Guard:      guard,
		DataMap:    s.dataMap.Build,
		DB:         db,
		Policy:     s.engine,
		Retention:  retentionMod,
		Processing: processingFacts,
		// Consent keeps its own rule: every current choice has its proof.
		Auditors: []module.Auditor{consentMod},
	})
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	mods = append(mods, auditMod)

	// Every module holding subject data outside the SQL store takes part
	// in privacy requests through its hooks.
	var hooks []privacy.Hook
	for _, m := range mods {
		if d, ok := m.(module.SubjectData); ok {
			hooks = append(hooks, privacy.Hook{Module: m.Name(), Data: d})
		}
	}
	privacyMod, err := privacy.New(privacy.Config{
		DataDir:    cfg.DataDir,
		SigningKey: key,
		Workers:    cfg.PrivacyWorkers,
		Lease:      cfg.PrivacyLease,
	}, privacy.Deps{
		DB:         db,
		Warehouse:  s.stores.warehouse,
		Policy:     s.engine,
		Guard:      guard,
		DataMap:    s.dataMap.Build,
		Accounts:   accountLookup{accountsMod},
		Visitors:   consentMod,
		Events:     eventsMod,
		Hooks:      hooks,
		Files:      s.stores.files,
		Leader:     s.leader,
		SignedInAt: accountsMod.SignedInAt,
		Logger:     logFor("privacy"),
		Now:        s.now,
	})
	if err != nil {
		return nil, fmt.Errorf("privacy: %w", err)
	}
	mods = append(mods, privacyMod, retentionMod)

	s.wired = wired{accounts: accountsMod, billing: billingMod, assets: assetsMod, consent: consentMod, events: eventsMod,
		attribution: attributionMod, privacy: privacyMod, retention: retentionMod, audit: auditMod}
	return mods, nil
}

// buildApp builds the HTTP app on the built modules: the platform's
// routes, the CORS rule, authentication, then every module's routes and
// the pages.
func (s *server) buildApp() error {
	cfg, st := s.cfg, s.stores
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(newRequestsCollector(s.wired.privacy))
	s.doc = web.NewOpenAPI(web.OpenAPIInfo{
		Title:       "Steward",
		Version:     version,
		Description: "Privacy and data-governance hub: product API, consent, analytics and privacy requests.",
	})
	s.app = web.New(web.Options{
		Logger:    s.log,
		BodyLimit: cfg.BodyLimit,
		// Uploads raise their own route's limit up to this ceiling.
		MaxBodyLimit:   max(cfg.BodyLimit, s.wired.assets.UploadBodyLimit(), s.wired.events.BodyLimit()),
		Version:        version,
		Registry:       reg,
		PolicyRevision: s.engine.Revision,
		OpsToken:       cfg.MetricsToken,
		OpsClosed:      cfg.OpsClosed(),
		OpenAPI:        s.doc,
		Health: []web.HealthCheck{
			{Name: "sql", Check: func(ctx context.Context) error { return sqlstore.Ping(ctx, st.sql) }},
			{Name: "warehouse", Check: st.warehouse.Ping},
		},
	})

	// Modules are mounted at the root (their routes carry full paths);
	// none registers itself.
	if len(cfg.AllowedOrigins) > 0 {
		// The banner, the tracker and the web app run on the product's own
		// origins and call Steward with its cookies; only the listed
		// origins may, and never a wildcard (credentials forbid it anyway).
		s.app.Use(cors.New(cors.Config{
			AllowOrigins:     strings.Join(cfg.AllowedOrigins, ","),
			AllowCredentials: true,
			AllowMethods:     "GET,POST,PUT,PATCH,DELETE",
			AllowHeaders:     "Content-Type,Authorization,X-CSRF-Token",
			MaxAge:           600,
		}))
	}
	s.mountAuth(s.app)
	if err := module.Mount(s.app, s.doc, s.modules...); err != nil {
		return fmt.Errorf("mount modules: %w", err)
	}
	return s.mountPortal(s.app)
}

// mountAuth installs, before any module route, the CSRF check and the
// authentication that puts the caller's principal in every request.
// Fiber runs a middleware only for routes added after it.
func (s *server) mountAuth(app *fiber.App) {
	app.Use(s.wired.accounts.CSRF())
	app.Use(authz.Middleware(s.wired.accounts.Authenticator()))
}

// accountLookup gives the privacy module the accounts it needs without
// the governance package importing a module.
type accountLookup struct{ accounts *accounts.Module }

func (a accountLookup) UserIDByEmail(ctx context.Context, email string) (string, error) {
	u, err := a.accounts.UserByEmail(ctx, email)
	if err != nil {
		return "", err
	}
	return u.ID, nil
}

func (a accountLookup) EmailByUserID(ctx context.Context, userID string) (string, error) {
	u, err := a.accounts.UserByID(ctx, userID)
	if err != nil {
		return "", err
	}
	return u.Email, nil
}

func (a accountLookup) LanguageByUserID(ctx context.Context, userID string) (string, error) {
	u, err := a.accounts.UserByID(ctx, userID)
	if err != nil {
		return "", err
	}
	return u.Language, nil
}

// attachments lets support check that a ticket's attachment is an asset
// of the user, without support importing assets.
type attachments struct{ assets *assets.Module }

func (a attachments) Owned(ctx context.Context, userID, assetID string) (support.AttachmentRef, error) {
	name, mime, err := a.assets.Describe(ctx, userID, assetID)
	if err != nil {
		return support.AttachmentRef{}, err
	}
	return support.AttachmentRef{AssetID: assetID, FileName: name, MimeType: mime}, nil
}

// Settings rows holding the instance's own random keys.
const (
	// signingKeySetting is the development signing key, used when
	// STEWARD_SIGNING_KEY is not set (never in production).
	signingKeySetting = "signing_key"
	// consentKeySetting keys the consent proof log's subject hashes. It
	// must never change, or old proofs could no longer be matched to their
	// subject, so it is not configurable and not rotated with the signing
	// key.
	consentKeySetting = "consent_hash_key"
)

// signingKey returns the configured key or, when none is configured (only
// allowed outside production), a random key kept in the settings table so
// links survive a restart.
func signingKey(ctx context.Context, db *bun.DB, configured string) ([]byte, error) {
	if configured != "" {
		return []byte(configured), nil
	}
	return instanceKey(ctx, db, signingKeySetting)
}

// instanceKey returns the random 32-byte key kept in the settings row
// name, making it on first use. Every process sharing the SQL store gets
// the same key.
func instanceKey(ctx context.Context, db *bun.DB, name string) ([]byte, error) {
	var row sqlstore.Setting
	err := db.NewSelect().Model(&row).Where("key = ?", name).Scan(ctx)
	switch {
	case err == nil:
		return hex.DecodeString(row.Value)
	case !errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("make %s: %w", name, err)
	}
	row = sqlstore.Setting{Key: name, Value: hex.EncodeToString(raw), UpdatedAt: time.Now().UTC()}
	if _, err := db.NewInsert().Model(&row).On("CONFLICT (key) DO NOTHING").Exec(ctx); err != nil {
		return nil, fmt.Errorf("store %s: %w", name, err)
	}
	// Another process may have stored its key first; use whichever won.
	if err := db.NewSelect().Model(&row).Where("key = ?", name).Scan(ctx); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return hex.DecodeString(strings.TrimSpace(row.Value))
}
