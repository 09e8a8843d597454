"""Names and knobs shared by the sandbox CLI, the seed and the service twin.

Everything the runbooks see (cluster, service, log group, metric dimensions,
flag prefix) is defined here once, and written to connection.yml by `start`.
"""

DEFAULT_STATE_DIR = '.sandbox'
DEFAULT_MOTO_PORT = 5055
DEFAULT_TWIN_PORT = 8085
DEFAULT_RECEIVER_PORT = 8095  # notification receiver; a free port when this one is busy
DEFAULT_REDIS_PORT = 6389     # the sandbox's own redis-server; a free port when busy (never 6379)
HOST = '127.0.0.1'  # loopback only, always

REGION = 'us-east-1'
ACCESS_KEY = 'sandbox-access-key'  # moto accepts any; not a secret
SECRET_KEY = 'sandbox-secret-key'  # moto accepts any; not a secret
ACCOUNT_ID = '123456789012'  # moto's default account

CLUSTER = 'svpms-sandbox-cluster'
SERVICE = 'svpms-api'
FAMILY = 'svpms-api'
CONTAINER = 'svpms-api'
CONTAINER_PORT = 8000
DESIRED_COUNT = 3
# Good revisions registered by the seed: revision N runs image tag GOOD_VERSIONS[N-1].
GOOD_VERSIONS = ('1.4.1', '1.4.2', '1.4.3')
INACTIVE_REVISION = 1  # deregistered by the seed; rollback logic must never pick it

LOG_GROUP = '/ecs/svpms-api'
# awslogs driver naming: <stream-prefix>/<container>/<task id>
LOG_STREAM = 'ecs/svpms-api/5f1c0e2a9b7d4c3e8a6f0b1d2c3e4f5a'

ALB_LOAD_BALANCER = 'app/svpms-sandbox-alb/0123456789abcdef'
ALB_TARGET_GROUP = 'targetgroup/svpms-api/0123456789abcdef'
TARGET_GROUP_ARN = 'arn:aws:elasticloadbalancing:%s:%s:%s' % (REGION, ACCOUNT_ID, ALB_TARGET_GROUP)
RDS_INSTANCE = 'svpms-sandbox-db'

FLAG_PREFIX = '/svpms/sandbox/flags/integrations/'
FLAGS = {'erp': 'enabled', 'email': 'enabled'}

# DynamoDB table of the one-mitigation-at-a-time locks (incident_lock module):
# hash key lock_key (S), TTL on expires_at.
LOCK_TABLE = 'svpms-sandbox-incident-locks'

# The container environment variable that marks a "bad" revision.
FAULT_ENV = 'SVPMS_TWIN_FAULT'

# Faults `inject` accepts. `kind` says how `inject` brings each one about:
#   deploy    a new task definition revision carrying the marker (like a bad
#             deploy); the twin behaves by the knobs below while the service
#             runs it, and a rollback (or `heal`) ends it
#   database  a real PostgreSQL condition in the sandbox database (no deploy)
#   config    a bad configuration push (SSM parameter) plus its side effect
# Knobs the twin reads for a revision carrying the marker (the non-deploy
# faults carry the good knobs: no revision ever carries them):
#   health_503_ratio  share of GET /health answered 503 {"status": "degraded"}
#   items_500_ratio   share of GET /api/v1/items answered 500
#   latency_ms        (min, max) latency of successful requests served from the cache
#   cpu / memory      (min, max) percent published as ECS CPUUtilization/MemoryUtilization
#   cpu_bound         True: latency x (DESIRED_COUNT / desiredCount)^2 and
#                     CPU x DESIRED_COUNT / desiredCount (capped at CPU_CAP), so
#                     scaling the service out really helps
# To add a fault, add an entry here; the twin reads the knobs, the CLI lists
# the names, and `inject` dispatches on `kind`.
GOOD_BEHAVIOUR = {
    'description': 'healthy',
    'health_503_ratio': 0.0,
    'items_500_ratio': 0.0,
    'latency_ms': (5, 40),
    'cpu': (25.0, 40.0),
    'memory': (45.0, 55.0),
    'cpu_bound': False,
    # the Stripe webhook route (scenario 4): None or an HTTP status it answers before verifying;
    # False = the signature check is off (anything is accepted, even unsigned)
    'webhook_status': None,
    'webhook_verify': True,
}

FAULTS = {
    'high_error_rate': {
        'kind': 'deploy',
        'description': 'bad deploy: ~30% of /api/v1/items answer 500 (KeyError in list_items), '
                       '~50% of /health answer 503',
        'health_503_ratio': 0.5,
        'items_500_ratio': 0.3,
        'latency_ms': (10, 60),
        'cpu': (70.0, 90.0),
        'memory': (75.0, 85.0),
        'cpu_bound': False,
    },
    'slow_deploy': {
        'kind': 'deploy',
        'description': 'CPU-heavy deploy: p95 ~1.3 s and ECS CPU 92-99% at 3 tasks, no 5xx; '
                       'scaling out to 6 tasks brings p95 to ~330 ms and CPU to ~48%',
        'health_503_ratio': 0.0,
        'items_500_ratio': 0.0,
        'latency_ms': (700, 1300),
        'cpu': (92.0, 99.0),
        'memory': (45.0, 55.0),
        'cpu_bound': True,
    },
    'lock_contention': dict(
        GOOD_BEHAVIOUR, kind='database',
        description='a batch session (svpms-nightly-reconcile) sits idle in transaction holding row locks '
                    'on tenant_quotas: every request waits 2.5 s for its lock, fails open; p95 ~2.5 s, no 5xx'),
    'cache_miss_storm': dict(
        GOOD_BEHAVIOUR, kind='config',
        description='bad config push: cache TTL parameter set to 1 s and the cache flushed; the hit rate '
                    'collapses and p95 > 1 s (cold render path), no 5xx'),
    # Scenario 3, authentication failures (no deploy: `inject` dispatches these by name).
    'redis_down': dict(
        GOOD_BEHAVIOUR, kind='process',
        description='the sandbox redis-server (the session store and cache) is stopped by PID, its port stays '
                    'recorded: POST /api/v1/auth/login answers 503 session_store_unavailable (and every items '
                    'request is a cache miss); `redis-start` or `heal` restarts it on the same port'),
    'jwt_key_mismatch': dict(
        GOOD_BEHAVIOUR, kind='secret',
        description='out-of-band change of the JWT signing-key secret: a new key is AWSCURRENT and the version '
                    'the API signs with lost AWSPREVIOUS, so the API signs with a key its verifiers do not '
                    'have: login 200 but GET /api/v1/auth/me 401 invalid_token, and the JWKS does not publish '
                    'the AWSCURRENT key; a new key plus a forced redeploy fixes it'),
    'idp_cert_expired': dict(
        GOOD_BEHAVIOUR, kind='certificate',
        description='the IdP (stand-in) signing certificate expired 2 days ago: /idp/metadata publishes it and '
                    'GET /api/v1/auth/saml/login answers 502 idp_certificate_expired'),
    'user_table_denied': dict(
        GOOD_BEHAVIOUR, kind='database',
        description='REVOKE SELECT ON public.users FROM the API role: POST /api/v1/auth/login answers 500 '
                    'user_lookup_failed (permission denied); GRANT SELECT fixes it'),
    # Scenario 4, Stripe payment webhook failures.
    'webhook_secret_mismatch': dict(
        GOOD_BEHAVIOUR, kind='secret',
        description='out-of-band change of the Stripe webhook signing secret in Secrets Manager (a wrong whsec_ '
                    'value is AWSCURRENT, AWSPREVIOUS keeps the right one) and a forced redeploy: the API verifies '
                    'with the wrong secret, every delivery answers 400 invalid_signature and the events pile up '
                    'as delivery_success=false; restoring the right secret as AWSCURRENT plus a redeploy fixes '
                    'it (the missed events need a replay)'),
    'webhook_endpoint_down': dict(
        GOOD_BEHAVIOUR, kind='deploy', webhook_status=500,
        description='bad deploy: POST /webhooks/stripe answers 500 before verifying; deliveries fail, are '
                    'retried (~5 s, ~20 s) and given up (delivery_success=false); a rollback fixes it (the missed '
                    'events need a replay)'),
    'stripe_key_revoked': dict(
        GOOD_BEHAVIOUR, kind='stripe',
        description='the Stripe API key the API uses (AWSCURRENT of the key secret; in the sandbox also the '
                    'connection.yml placeholder) is revoked at the Stripe stand-in: every API call answers 401 '
                    'api_key_expired, payments fail, no new events; a new key in Secrets Manager plus a redeploy '
                    'fixes the API'),
    'signature_check_disabled': dict(
        GOOD_BEHAVIOUR, kind='deploy', webhook_verify=False,
        description='bad deploy: the webhook route no longer verifies Stripe-Signature and accepts anything, '
                    'even unsigned or forged events (200); a rollback fixes it'),
}
# faults that need payments (a sandbox started with payments=False refuses them)
PAYMENTS_FAULTS = ('webhook_secret_mismatch', 'webhook_endpoint_down', 'stripe_key_revoked', 'signature_check_disabled')
FAULT_KINDS = ('deploy', 'database', 'config', 'process', 'secret', 'certificate', 'stripe')
CPU_CAP = 99.5

# Twin timing
POLL_INTERVAL = 1.0       # seconds between reads of the ECS service
PUBLISH_INTERVAL = 5.0    # seconds between metric / log publishes
TRAFFIC_RPS = 10.0        # synthetic requests per second to /api/v1/items
STATUS_WINDOW = 30.0      # seconds covered by the "last window" numbers

CONNECTION_FILE = 'connection.yml'

# Notification receiver (receiver.py): one loopback port playing PagerDuty
# Events v2 + REST, Slack and Statuspage, each under its own path prefix, and
# recording every request (auth values redacted) to NOTIFICATIONS_FILE.
NOTIFICATIONS_FILE = 'notifications.jsonl'
RECEIVER_PREFIXES = {
    'pagerduty_events': '/pagerduty-events',
    'pagerduty_api': '/pagerduty',
    'slack_api': '/slack/api',
    'statuspage_api': '/statuspage/v1',
}
STATUSPAGE_PAGE_ID = 'sandboxpage'
SLACK_CHANNEL = '#incidents'
PAGERDUTY_FROM_EMAIL = 'oncall-bot@svpms.example.com'
# PLACEHOLDERS, not secrets: the receiver accepts any non-empty value with the
# right scheme, so these only prove that the modules send a credential.
PAGERDUTY_ROUTING_KEY = 'sandbox-routing-key'
PAGERDUTY_API_TOKEN = 'sandbox-pagerduty-api-token'
SLACK_TOKEN = 'sandbox-slack-bot-token'
STATUSPAGE_API_KEY = 'sandbox-statuspage-api-key'

# The sandbox's own Redis (the API's response cache).
REDIS_SERVER = '/usr/bin/redis-server'
REDIS_TIMEOUT = 1.0                  # socket (connect and read) timeout of every Redis call
CACHE_KEY_PREFIX = 'svpms:items:'    # + tenant id
CACHE_TTL_PARAMETER = '/svpms/sandbox/config/cache_ttl_seconds'  # SSM String, read by the twin every ~2 s
GOOD_CACHE_TTL = 300
STORM_CACHE_TTL = 1                  # what cache_miss_storm pushes
TTL_POLL_INTERVAL = 2.0
MISS_PENALTY_MS = (700, 1300)        # the cold render path on a cache miss

# PostgreSQL: the machine's server (trust auth), one database and two roles per
# sandbox, named after the twin port; created by `start`, dropped by `stop`.
PG_HOST_ENV, PG_PORT_ENV, PG_ADMIN_ENV = 'SVPMS_SANDBOX_PG_HOST', 'SVPMS_SANDBOX_PG_PORT', 'SVPMS_SANDBOX_PG_ADMIN'
PG_DEFAULT_HOST, PG_DEFAULT_PORT, PG_DEFAULT_ADMIN = '127.0.0.1', 5432, 'postgres'
PG_CONNECT_TIMEOUT = 3               # seconds, on every connection
DB_NAME_FORMAT = 'svpms_sandbox_%d'  # % twin port
APP_ROLE_FORMAT = 'svpms_sbx_%d_app'      # the API's role
BATCH_ROLE_FORMAT = 'svpms_sbx_%d_batch'  # the batch jobs' role
DB_FILE = 'db.json'                  # state dir: what `start` created (read by the twin and lock holder)
TENANT_COUNT = 20  # a small key space: a fixed cache refills within seconds
TENANTS = tuple('tnt_%04d' % (1001 + i) for i in range(TENANT_COUNT))
ITEMS_ROWS = 20000                   # items, no index on tenant_id (cache misses seq-scan)
APP_NAME = 'svpms-api'
APP_POOL_MIN = 4                     # connections kept open (psycopg2 closes the ones above it on return)
APP_POOL_MAX = 10
APP_LOCK_TIMEOUT = '2500ms'
APP_STATEMENT_TIMEOUT = '5s'
POOL_ACQUIRE_TIMEOUT = 3.0           # seconds a request waits for a pooled connection, then fails open
BATCH_APP_NAME = 'svpms-nightly-reconcile'
LOCK_HOLDER_MAX_SECONDS = 1800       # the lock holder gives up after 30 minutes whatever happens
LOCK_HOLDER_FILE = 'lock_holder'     # .pid / .log in the state dir

# ---------------------------------------------------------------- authentication (scenario 3)
# Users: public.users in the sandbox database (owned by the API role, like the
# other tables), password hashes pbkdf2_sha256$<iterations>$<salt>$<b64 hash>.
USERS_TABLE = 'public.users'
USER_COUNT = 50                      # seeded users besides the synthetic probe user (every 10th inactive)
PBKDF2_ITERATIONS = 20000            # modest: a login stays fast
PROBE_USER = 'synthetic-probe@svpms.example.com'
# PLACEHOLDER, not a secret: the synthetic probe user's sandbox password (the
# sandbox database holds only its hash; the runbook's login probe sends it).
PROBE_PASSWORD = 'sandbox-probe-password'

# JWT signing key: a Secrets Manager secret (moto) holding an RSA-2048 PKCS#8 PEM
# private key. A task loads its SIGNING key from AWSCURRENT when it starts (twin
# start, new PRIMARY deployment id, new task definition); it VERIFIES with the
# keys staged AWSCURRENT and AWSPREVIOUS, re-read every KEYS_POLL_INTERVAL s.
JWT_SECRET_ID = 'svpms/sandbox/api/jwt-signing-key'
KEYS_POLL_INTERVAL = 2.0
ACCESS_TOKEN_TTL = 900               # seconds (exp = iat + 15 min)
SESSION_KEY_PREFIX = 'svpms:session:'  # + session uuid, in the sandbox Redis
SESSION_TTL = 3600
MAX_AUTH_BODY = 16384                # bytes accepted in a login request body

# API auth endpoints (the service twin)
LOGIN_PATH = '/api/v1/auth/login'        # POST {"email", "password"}
LOGIN_CHECK_PATH = '/api/v1/auth/me'     # GET, Authorization: Bearer <jwt>
LOGOUT_PATH = '/api/v1/auth/logout'      # POST, Authorization: Bearer <jwt>
SSO_START_PATH = '/api/v1/auth/saml/login'  # GET -> 302 to the IdP (or 502)
JWKS_PATH = '/.well-known/jwks.json'

# The external SAML IdP's stand-in (served by the twin under /idp): its signing
# key and self-signed certificate live in the state dir, made by `start`.
IDP_PATH = '/idp'
IDP_METADATA_PATH = '/idp/metadata'
IDP_SSO_PATH = '/idp/sso'
IDP_CERT_FILE = 'idp_cert.pem'
IDP_KEY_FILE = 'idp_key.pem'
IDP_CERT_DAYS = 365
IDP_EXPIRED_DAYS_AGO = 2             # idp_cert_expired: notAfter this many days in the past
IDP_CERT_POLL_INTERVAL = 2.0         # the SP side re-reads the IdP certificate this often
SAML_SUPPORT_CONTACT = 'Identity team (sandbox IdP stand-in): identity-oncall@svpms.example.com, +1-555-0100'

# ---------------------------------------------------------------- payments: Stripe (scenario 4)
# The Stripe stand-in (stripe_server.py): localstripe's aiohttp app run in-process on
# 127.0.0.1:<stripe port>, plus SANDBOX EXTENSIONS (webhook endpoints API, signed delivery
# with retries, delivery_success filter, pending_webhooks, revoked keys, /_sandbox/ routes).
DEFAULT_STRIPE_PORT = 8420           # a free port when that one is busy; an explicit port must be free
STRIPE_STORE_FILE = 'stripe_store.pickle'        # localstripe's store (never /tmp/localstripe.pickle)
STRIPE_ENDPOINTS_FILE = 'stripe_webhook_endpoints.json'  # registered endpoints, their secrets (mode 0600)
STRIPE_REVOKED_FILE = 'stripe_revoked_keys.json'  # revoked API keys: sha256 + last 4 characters only
STRIPE_API_URL_PRODUCTION = 'https://api.stripe.com'
STRIPE_API_VERSION = '2024-06-20'
# PLACEHOLDERS, not secrets (localstripe accepts any sk_ key): the API key the
# service uses (seeded into Secrets Manager; `stripe_key_revoked` revokes it) and
# the on-call operator's own key in connection.yml, a different one, as in
# production (a restricted read key there), so the runbook can still read
# Stripe when the service's key is revoked.
STRIPE_API_KEY = 'sk_test_sandbox_0000000000000000000000000000'
STRIPE_OPERATOR_KEY = 'sk_test_sandbox_operator_00000000000000000000'
STRIPE_KEY_SECRET_ID = 'svpms/sandbox/api/stripe-api-key'
STRIPE_WEBHOOK_SECRET_ID = 'svpms/sandbox/api/stripe-webhook-secret'
STRIPE_WEBHOOK_PATH = '/webhooks/stripe'          # the twin's webhook endpoint (OUR endpoint)
STRIPE_WEBHOOK_EVENTS = ('*',)
STRIPE_SIGNATURE_TOLERANCE = 300     # seconds, as Stripe's libraries
STRIPE_DELIVERY_TIMEOUT = 5.0        # seconds per delivery attempt
STRIPE_DELIVERY_DELAY = 0.2          # the first attempt, after the creating request returned
# Retries after a failed attempt: ~5 s, then ~20 s, then the stand-in gives up (Stripe retries for
# up to 3 days; shortened for the sandbox). The event then stays delivery_success=false.
STRIPE_RETRY_DELAYS = (5.0, 20.0)
PAYMENTS_INTERVAL = 2.0              # the twin creates and confirms a PaymentIntent this often
PAYMENTS_TIMEOUT = 5.0               # seconds, every twin -> stand-in call
PAYMENTS_RECENT = 20                 # last event ids kept in /twin/state "payments"
MAX_WEBHOOK_BODY = 262144            # bytes accepted in a webhook request body
