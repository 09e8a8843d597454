"""Names and knobs shared by the sandbox CLI, the seed and the service twin.

Everything the runbooks see (cluster, service, log group, metric dimensions,
flag prefix) is defined here once, and written to connection.yml by `start`.
"""

DEFAULT_STATE_DIR = '.sandbox'
DEFAULT_MOTO_PORT = 5055
DEFAULT_TWIN_PORT = 8085
DEFAULT_RECEIVER_PORT = 8095  # notification receiver; a free port when this one is busy
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

# Faults `inject` accepts, and how the twin behaves while the service runs a
# revision carrying the marker. To add one (e.g. high_latency) add an entry
# here; the twin reads the knobs, the CLI lists the names.
#   health_503_ratio  share of GET /health answered 503 {"status": "degraded"}
#   items_500_ratio   share of GET /api/v1/items answered 500
#   latency_ms        (min, max) latency of successful requests
#   cpu / memory      (min, max) percent published as ECS CPU/MemoryUtilization
FAULTS = {
    'high_error_rate': {
        'description': 'bad deploy: ~30% of /api/v1/items answer 500 (KeyError in list_items), '
                       '~50% of /health answer 503',
        'health_503_ratio': 0.5,
        'items_500_ratio': 0.3,
        'latency_ms': (10, 60),
        'cpu': (70.0, 90.0),
        'memory': (75.0, 85.0),
    },
}

GOOD_BEHAVIOUR = {
    'description': 'healthy',
    'health_503_ratio': 0.0,
    'items_500_ratio': 0.0,
    'latency_ms': (5, 40),
    'cpu': (25.0, 40.0),
    'memory': (45.0, 55.0),
}

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
