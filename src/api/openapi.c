/*
 * openapi.c: the API's own documentation (SPEC §3). GET /api/webhook/openapi/json is the
 * OpenAPI 3.1 document of every route, built once on first use from the operation table `ops`
 * and the schema fragments below, and checked to parse before it is served. GET
 * /api/webhook/openapi is a page that runs Swagger UI on it. GET /api/webhook/openapi/<file>
 * serves Swagger UI's own files (the allow-list `assets`, nothing else) from the npm package
 * swagger-ui-dist on disk: HOOKD_SWAGGER_UI_DIR if set, else the first of
 * <dir of the binary>/../node_modules/swagger-ui-dist, <dir of the binary>/../share/hookd/
 * swagger-ui-dist (the installed package) and ./node_modules/swagger-ui-dist that
 * holds them. A file is read once and kept in memory. Without those files the page is plain
 * HTML: a link to the JSON document and the list of routes.
 *
 * Schema fragments are JSON written with ' for " (they hold no apostrophe), so they read as
 * the JSON they become. When a route changes, change its row in `ops`: the integration test
 * (tests/integration/test_openapi.py) calls every documented operation and fails on a status,
 * content type or body the document does not describe.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "core/log.h"

#define DOCS            "/api/webhook/openapi"
#define ASSET_MAX_BYTES (32 * 1024 * 1024)
#define NOSNIFF         "X-Content-Type-Options: nosniff\r\n"
#define NO_CACHE        "Cache-Control: no-cache\r\n" NOSNIFF
#define ASSET_CACHE     "Cache-Control: public, max-age=86400\r\n" NOSNIFF

/* ---- schema fragments (' stands for ") ------------------------------------------------------ */

/* clang-format off */
#define REF(name) "{'$ref':'#/components/schemas/" name "'}"
#define S_STR "{'type':'string'}"
#define S_STRN "{'type':['string','null']}"
#define S_TIME "{'type':'string','format':'date-time','examples':['2026-01-31T12:00:00.000Z']}"
#define S_TIMEN "{'type':['string','null'],'format':'date-time'}"
#define S_COUNT "{'type':'integer','minimum':0}"
#define S_ID(prefix) "{'type':'string','pattern':'^" prefix "_[a-z0-9]{20,40}$'}"
#define ELLIPSIS "\xe2\x80\xa6"
#define PAGED(key, item)                                                                       \
    "{'allOf':[" REF("Paging") ",{'type':'object','required':['" key "'],'properties':{'" key \
    "':{'type':'array','items':" REF(item) "}}}]}"
/* clang-format on */

typedef struct fragment {
    const char *name;
    const char *json;
} fragment;

/* clang-format off */
static const fragment schemas[] = {
    {"Error",
     "{'type':'object','description':'Every error answer: JSON with the right status, never "
     "HTML.','required':['code','message','why','fix'],'properties':{"
     "'code':{'type':'string','description':'Stable machine-readable code: invalid_json, "
     "unauthorized, not_found, method_not_allowed, conflict, payload_too_large, "
     "unsupported_media_type, validation_failed, rate_limited, limit_exceeded, delivery_loop, "
     "unavailable, forbidden, header_too_large.',"
     "'examples':['validation_failed']},"
     "'message':{'type':'string','description':'What went wrong; for 422 it names the field.'},"
     "'why':{'type':'string','description':'Why the request was refused.'},"
     "'fix':{'type':'string','description':'What to do about it.'}}}"},
    {"Paging",
     "{'type':'object','required':['total','totalCapped','page','limit','next'],'properties':{"
     "'total':{'type':'integer','minimum':0,'maximum':10000,'description':'Items in all pages, "
     "counted up to 10,000 (a bounded count: lists never count a whole table).'},"
     "'totalCapped':{'type':'boolean','description':'true: there are more than 10,000 items "
     "and total says 10,000.'},"
     "'page':{'type':'integer','minimum':1,'description':'The page asked for (1 with a "
     "cursor).'},"
     "'limit':{'type':'integer','minimum':1,'maximum':100},"
     "'next':{'type':['string','null'],'description':'The cursor of the page after this one "
     "(pass it back as cursor, with the same filters), or null on the last page. Opaque.'}}}"},
    {"WebhookStatus", "{'type':'string','enum':['active','paused','disabled','failed']}"},
    {"DeliveryStatus", "{'type':'string','enum':['pending','success','failed','retrying']}"},
    {"SignatureScheme",
     "{'type':'string','enum':['standard','reloop','sha256','ed25519'],'description':'standard: "
     "Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature); reloop: "
     "Reloop-Id, Reloop-Timestamp, Reloop-Signature; sha256: X-Webhook-Signature; ed25519: "
     "Standard Webhooks v1a (the same three headers, v1a,<base64 Ed25519 signature> in "
     "webhook-signature, after the v1 ones when standard is chosen too), verified with the "
     "webhook publicKey.'}"},
    {"EventType",
     "{'type':'string','pattern':'^[A-Za-z0-9_.-]{1,255}$','examples':['email.delivered']}"},
    {"IngestEventType",
     "{'allOf':[" REF("EventType") "],'not':{'pattern':'^hookd[.]'},'description':'An event "
     "type. The prefix hookd. is reserved for the operational events hookd emits itself "
     "(422).','examples':['email.delivered']}"},
    {"EventPattern",
     "{'type':'string','minLength':1,'maxLength':255,'description':'An event type, or a "
     "pattern in which a whole dot-separated segment may be * (exactly one segment); * alone "
     "matches every type except the operational ones (hookd.*), which only a pattern naming "
     "hookd first matches: hookd.* matches all of them.','examples':['email.*']}"},
    {"OperationalEventData",
     "{'type':'object','required':['webhook','delivery','lastResponseStatus','lastError'],"
     "'description':'The data of an operational event (types hookd.webhook.disabled, "
     "hookd.webhook.failed, hookd.delivery.exhausted, hookd.webhook.recovered; docs/API.md "
     "Operational events).','properties':{"
     "'webhook':{'type':'object','required':['id','url','name','status'],'properties':{"
     "'id':" S_ID("wh") ",'url':" S_STR ",'name':" S_STR ",'status':" REF("WebhookStatus")
     "}},"
     "'delivery':{'type':['object','null'],'required':['id','eventId','eventType','attempts'],"
     "'description':'The delivery whose attempt caused the event; null for a manual "
     "disable.','properties':{'id':" S_ID("whde") ",'eventId':" S_ID("whev") ","
     "'eventType':" REF("EventType") ",'attempts':{'type':'integer','minimum':1}}},"
     "'reason':{'type':'string','enum':['gone','manual'],'description':'Only in "
     "hookd.webhook.disabled.'},"
     "'consecutiveFailures':{'type':'integer','description':'Only in hookd.webhook.failed.'},"
     "'lastResponseStatus':{'type':['integer','null']},"
     "'lastError':{'type':['string','null']}}}"},
    {"CustomHeaders",
     "{'type':['object','null'],'maxProperties':50,'additionalProperties':{'type':'string',"
     "'maxLength':4096},'description':'Extra headers of every delivery. Names are HTTP tokens, "
     "values have no control characters; content-type, content-length, host, user-agent, "
     "x-delivery-id, the signature headers and the hop-by-hop headers are refused.',"
     "'examples':[{'X-Team':'billing'}]}"},
    {"FilteringOptions",
     "{'type':['object','null'],'properties':{"
     "'matchConditions':{'type':'object',"
     "'additionalProperties':true,'description':'Delivered only if every top-level key "
     "of data equals the value given.'},"
     "'excludeFields':{'type':'array','items':{'type':'string'},'description':'Top-level keys "
     "of data removed before sending.'}},"
     "'examples':[{'matchConditions':{'plan':'pro'},'excludeFields':['internalNote']}]}"},
    {"RetrySchedule",
     "{'type':['array','null'],'minItems':1,'maxItems':50,'items':{'type':'string',"
     "'pattern':'^ *[0-9]+(ms|s|m|h|d)? *$','maxLength':32},"
     "'description':'The delay before retry 1, 2, ... of this webhook (units ms, s, m, h, d; a "
     "bare number is ms; each more than 0 and at most 7d; the last one repeats), overriding "
     "HOOKD_RETRY_SCHEDULE; null = the global schedule. Given without maxRetries, its length "
     "becomes maxRetries. Applies from the next retry decided after a change; a delivery keeps "
     "the maxAttempts it was created with.',"
     "'examples':[['10s','1m','10m']]}"},
    {"TimeoutMs",
     "{'type':['integer','null'],'minimum':100,'description':'The total deadline of one "
     "attempt to this webhook in ms, from 100 up to HOOKD_HTTP_TIMEOUT_MS of the server (more "
     "is refused with 422); null = HOOKD_HTTP_TIMEOUT_MS. Applies to attempts started after a "
     "change.','examples':[3000]}"},
    {"Ordering",
     "{'type':'string','enum':['parallel','fifo'],'default':'parallel','description':'parallel: "
     "deliveries go out as they are due, several at a time. fifo: one attempt at a time, in "
     "the order the deliveries were created; the next waits until the previous one succeeded "
     "or was given up (a failing endpoint blocks its own queue, nobody else). A change applies "
     "from the next claim.'}"},
    {"Webhook",
     "{'type':'object','description':'A webhook endpoint of your organization.',"
     "'required':['id','name','url','secret','organizationId','userId','status','events',"
     "'customHeaders','rateLimitEnabled','maxRequestsPerMinute','maxRetries',"
     "'filteringOptions','signatureSchemes','lastTriggeredAt','successCount','failureCount',"
     "'consecutiveFailures','createdAt','updatedAt','retrySchedule','timeoutMs',"
     "'publicKey','ordering'],"
     "'properties':{"
     "'id':" S_ID("wh") ","
     "'name':{'type':'string','minLength':1,'maxLength':255},"
     "'url':{'type':'string','format':'uri','maxLength':2048},"
     "'secret':{'type':'string','description':'The signing secret: plaintext only in the "
     "answers of create and rotate-secret, elsewhere masked as whsec_" ELLIPSIS " and its "
     "last characters (at most 4, at most a quarter of the secret).'},"
     "'organizationId':" S_STR ","
     "'userId':" S_STRN ","
     "'status':" REF("WebhookStatus") ","
     "'events':{'type':'array','items':" REF("EventPattern") "},"
     "'customHeaders':" REF("CustomHeaders") ","
     "'rateLimitEnabled':{'type':'boolean'},"
     "'maxRequestsPerMinute':{'type':'integer','minimum':1,'maximum':100000},"
     "'maxRetries':{'type':'integer','minimum':0,'maximum':50,'description':'Retries after "
     "the first attempt.'},"
     "'filteringOptions':" REF("FilteringOptions") ","
     "'signatureSchemes':{'type':'array','items':" REF("SignatureScheme") "},"
     "'previousSecretExpiresAt':{'type':'string','format':'date-time','description':'Only "
     "during a rotation grace period: until then the previous secret signs beside the new "
     "one.'},"
     "'publicKey':{'type':['string','null'],'pattern':'^whpk_[A-Za-z0-9+/]{43}=$',"
     "'description':'The Ed25519 public key (whpk_ and base64 of its 32 bytes) that verifies "
     "the v1a signatures; made when ed25519 is first among signatureSchemes, kept after (also "
     "when the scheme is removed), replaced by rotate-signing-key; null if none.'},"
     "'previousPublicKey':{'type':'string','pattern':'^whpk_[A-Za-z0-9+/]{43}=$',"
     "'description':'Only during a key rotation grace period: the key being rotated out, "
     "whose v1a signature is still sent after the new one.'},"
     "'previousPublicKeyExpiresAt':{'type':'string','format':'date-time','description':'Only "
     "during a key rotation grace period: when the previous key stops signing.'},"
     "'lastTriggeredAt':" S_TIMEN ","
     "'successCount':" S_COUNT ","
     "'failureCount':" S_COUNT ","
     "'consecutiveFailures':" S_COUNT ","
     "'createdAt':" S_TIME ","
     "'updatedAt':" S_TIME ","
     "'retrySchedule':" REF("RetrySchedule") ","
     "'timeoutMs':" REF("TimeoutMs") ","
     "'ordering':" REF("Ordering") "}}"},
    {"WebhookFields",
     "{'type':'object','properties':{"
     "'name':{'type':'string','minLength':1,'maxLength':255},"
     "'description':{'type':'string','minLength':1,'maxLength':255,'description':'The seed "
     "system name for name, used when name is absent.'},"
     "'url':{'type':'string','format':'uri','maxLength':2048,'description':'Absolute http or "
     "https URL with a host and no credentials. A literal private or loopback address is "
     "refused unless HOOKD_ALLOW_NETWORKS covers it.'},"
     "'events':{'type':'array','minItems':1,'maxItems':100,'items':" REF("EventPattern") ","
     "'description':'Event types or patterns; on update the list replaces the "
     "subscriptions.'},"
     "'secret':{'type':'string','minLength':8,'maxLength':512,'description':'Printable ASCII "
     "without spaces; generated (whsec_ and base64 of 32 random bytes) when absent.'},"
     "'status':{'type':'string','enum':['active','paused','disabled'],'description':'Setting "
     "active resets consecutiveFailures and sends what was held.'},"
     "'customHeaders':" REF("CustomHeaders") ","
     "'rateLimitEnabled':{'type':'boolean','default':true},"
     "'maxRequestsPerMinute':{'type':'integer','minimum':1,'maximum':100000,'default':60},"
     "'maxRetries':{'type':'integer','minimum':0,'maximum':50,'default':6},"
     "'filteringOptions':" REF("FilteringOptions") ","
     "'signatureSchemes':{'type':'array','minItems':1,'items':" REF("SignatureScheme") ","
     "'default':['standard','reloop']},"
     "'userId':{'type':['string','null'],'minLength':1,'maxLength':255},"
     "'retrySchedule':" REF("RetrySchedule") ","
     "'timeoutMs':" REF("TimeoutMs") ","
     "'ordering':" REF("Ordering") "}}"},
    {"WebhookCreate",
     "{'allOf':[" REF("WebhookFields") "],'required':['url','events'],"
     "'anyOf':[{'required':['name']},{'required':['description']}],"
     "'description':'name (or description), url and events are required.'}"},
    {"WebhookUpdate",
     "{'allOf':[" REF("WebhookFields") "],'minProperties':1,"
     "'description':'Any field of create; at least one.'}"},
    {"WebhookList", PAGED("webhooks", "Webhook")},
    {"WebhookDeleted",
     "{'type':'object','required':['id','message'],'properties':{"
     "'id':" S_ID("wh") ",'message':" S_STR ","
     "'failedDeliveries':{'type':'integer','minimum':0,'description':'Pending and retrying "
     "deliveries that the deletion ended failed.'}}}"},
    {"RotateKeyRequest",
     "{'type':'object','properties':{"
     "'graceSeconds':{'type':'integer','minimum':0,'maximum':604800,'default':86400,"
     "'description':'How long the previous key keeps signing beside the new one; 0 drops it "
     "at once.'}}}"},
    {"RotateSecretRequest",
     "{'type':'object','properties':{"
     "'graceSeconds':{'type':'integer','minimum':0,'maximum':604800,'default':86400,"
     "'description':'How long the previous secret keeps signing beside the new one; 0 drops "
     "it at once.'},"
     "'secret':{'type':'string','minLength':8,'maxLength':512,'description':'The new secret; "
     "generated when absent.'}}}"},
    {"DeliveryBody",
     "{'type':'object','description':'What a receiver gets: compact JSON, keys in this order.',"
     "'required':['id','type','created_at','data'],'properties':{"
     "'id':{'type':'string','description':'The event id: the same on every attempt and "
     "replay.'},"
     "'type':" REF("EventType") ",'created_at':" S_TIME ","
     "'data':{'type':'object',"
     "'additionalProperties':true,'description':'The event data after excludeFields.'}}}"},
    {"SignTestEventRequest",
     "{'type':'object','required':['webhookId','event'],'properties':{"
     "'webhookId':" S_ID("wh") ",'event':" REF("EventType") ","
     "'payload':{'type':'object',"
     "'additionalProperties':true,'description':'The event data; {} when absent.'}}}"},
    {"SignedTestEvent",
     "{'type':'object','required':['url','headers','body','rawBody'],'properties':{"
     "'url':{'type':'string','format':'uri'},"
     "'headers':{'type':'object','additionalProperties':{'type':'string'},'description':"
     "'Every header a delivery would carry, the signatures included.'},"
     "'body':" REF("DeliveryBody") ","
     "'rawBody':{'type':'string','description':'The body exactly as sent: the signed "
     "bytes.'}}}"},
    {"EventIngest",
     "{'type':'object','required':['type','data'],'properties':{"
     "'type':" REF("IngestEventType") ","
     "'data':{'type':'object',"
     "'additionalProperties':true,'description':'Any JSON object; stored and delivered byte for "
     "byte.'},"
     "'idempotencyKey':{'type':['string','null'],'minLength':1,'maxLength':255,'description':"
     "'Unique per organization: a repeat answers 200 with the first event and creates "
     "nothing. Also accepted as the Idempotency-Key header.'},"
     "'userId':{'type':['string','null'],'minLength':1,'maxLength':255}}}"},
    {"TriggerRequest",
     "{'type':'object','required':['event','payload'],'properties':{"
     "'event':" REF("IngestEventType") ",'payload':{'type':'object','additionalProperties':true},"
     "'idempotencyKey':{'type':['string','null'],'minLength':1,'maxLength':255},"
     "'userId':{'type':['string','null'],'minLength':1,'maxLength':255}}}"},
    {"EventBatch",
     "{'type':'object','required':['events'],'properties':{'events':{'type':'array',"
     "'minItems':1,'maxItems':1000,'items':" REF("EventIngest") "}}}"},
    {"IngestResult",
     "{'type':'object','required':['id','type','deliveries','duplicate'],'properties':{"
     "'id':" S_ID("whev") ",'type':" REF("EventType") ","
     "'deliveries':{'type':'integer','minimum':0,'description':'Deliveries created.'},"
     "'duplicate':{'type':'boolean'}}}"},
    {"BatchResult",
     "{'type':'object','required':['results'],'properties':{'results':{'type':'array',"
     "'items':" REF("IngestResult") ",'description':'One per event, in order.'}}}"},
    {"Event",
     "{'type':'object','required':['id','type','data','source','idempotencyKey',"
     "'organizationId','userId','createdAt'],'properties':{"
     "'id':" S_ID("whev") ",'type':" REF("EventType") ","
     "'data':{'anyOf':[{'type':['object','null'],"
     "'additionalProperties':true}," REF("OperationalEventData") "],"
     "'description':'The data as ingested; an operational event (source hookd, type hookd.*) "
     "carries OperationalEventData.'},"
     "'source':{'type':'string','enum':['api','manual','nats','kumomta','hookd']},"
     "'idempotencyKey':" S_STRN ",'organizationId':" S_STR ",'userId':" S_STRN ","
     "'createdAt':" S_TIME ","
     "'deliveries':{'type':'array','description':'Only when one event is read.','items':{"
     "'type':'object','required':['id','webhookId','status'],'properties':{"
     "'id':" S_ID("whde") ",'webhookId':" S_ID("wh") ",'status':" REF("DeliveryStatus")
     "}}}}}"},
    {"EventList", PAGED("events", "Event")},
    {"Attempt",
     "{'type':'object','description':'One HTTP try of a delivery.','required':['id',"
     "'attemptNumber','status','responseStatus','responseBody','responseHeaders','durationMs',"
     "'errorMessage','createdAt'],'properties':{"
     "'id':" S_ID("whda") ",'attemptNumber':{'type':'integer','minimum':1},"
     "'status':" REF("DeliveryStatus") ","
     "'responseStatus':{'type':['integer','null']},"
     "'responseBody':" S_STRN ",'responseHeaders':{'type':['object','null'],"
     "'additionalProperties':true},"
     "'durationMs':" S_COUNT ",'errorMessage':" S_STRN ",'createdAt':" S_TIME "}}"},
    {"Delivery",
     "{'type':'object','description':'One event sent to one webhook, with all its attempts.',"
     "'required':['id','webhookId','webhookEventId','replayOfDeliveryId','eventType',"
     "'eventData','status','requestUrl','requestHeaders','requestBody','responseStatus',"
     "'responseBody','responseHeaders','attemptNumber','maxAttempts','nextRetryAt',"
     "'lastAttemptAt','errorMessage','completedAt','durationMs','createdAt','attempts'],"
     "'properties':{"
     "'id':" S_ID("whde") ",'webhookId':" S_ID("wh") ",'webhookEventId':" S_ID("whev") ","
     "'replayOfDeliveryId':{'type':['string','null'],'description':'Set on a manual replay.'},"
     "'eventType':" S_STRN ",'eventData':{'type':['object','null'],'additionalProperties':true},"
     "'status':" REF("DeliveryStatus") ","
     "'requestUrl':" S_STRN ","
     "'requestHeaders':{'type':['object','null'],'additionalProperties':true,"
     "'description':'Headers of the last attempt.'},"
     "'requestBody':{'anyOf':[" REF("DeliveryBody") ",{'type':'null'}]},"
     "'responseStatus':{'type':['integer','null']},"
     "'responseBody':{'type':['string','null'],'description':'The first "
     "HOOKD_RESPONSE_BODY_MAX bytes as text (NUL and invalid UTF-8 as U+FFFD); a longer body "
     "ends with the [truncated by hookd] marker.'},"
     "'responseHeaders':{'type':['object','null'],'additionalProperties':true},"
     "'attemptNumber':{'type':'integer','minimum':0,'description':'Attempts made.'},"
     "'maxAttempts':{'type':'integer','minimum':1},"
     "'nextRetryAt':{'type':['string','null'],'format':'date-time','description':'null when "
     "nothing is scheduled, e.g. while the webhook is paused or failed.'},"
     "'lastAttemptAt':" S_TIMEN ",'errorMessage':" S_STRN ",'completedAt':" S_TIMEN ","
     "'durationMs':{'type':['integer','null']},'createdAt':" S_TIME ","
     "'attempts':{'type':'array','items':" REF("Attempt") "}}}"},
    {"DeliveryList", PAGED("deliveries", "Delivery")},
    {"RetryResult",
     "{'type':'object','required':['success','newDeliveryId'],'properties':{"
     "'success':{'const':true},'newDeliveryId':" S_ID("whde") ","
     "'replayOfDeliveryId':" S_ID("whde") "}}"},
    {"RecoverRequest",
     "{'type':'object','required':['since'],'properties':{"
     "'since':{'type':'string','format':'date-time','description':'Failed deliveries created "
     "at or after this time are replayed.'},"
     "'until':{'type':['string','null'],'format':'date-time','description':'Exclusive end; "
     "later than since. Default: now.'}}}"},
    {"RecoverResult",
     "{'type':'object','required':['count'],'properties':{'count':{'type':'integer',"
     "'minimum':0,'description':'Deliveries replayed.'}}}"},
    {"Health",
     "{'type':'object','required':['status','checks'],'properties':{"
     "'status':{'type':'string','enum':['ok','degraded','draining'],'description':'draining "
     "(readiness only): a graceful stop has begun.'},"
     "'checks':{'type':'object','required':['store','queue','nats'],'properties':{"
     "'store':{'type':'string','enum':['ok','down']},"
     "'queue':{'type':'string','enum':['ok','down']},"
     "'nats':{'type':'string','enum':['ok','down','disabled']}}},"
     "'backend':" S_STR ",'version':" S_STR ",'uptimeSeconds':" S_COUNT "}}"},
    {"Liveness",
     "{'type':'object','required':['status'],'properties':{"
     "'status':{'type':'string','enum':['ok']}}}"},
    /* tenancy (orgs.c) */
    {"Scope",
     "{'type':'string','enum':['full','read'],'description':'read: GET routes only (403 "
     "forbidden elsewhere, and on the key routes).'}"},
    {"Organization",
     "{'type':'object','required':['id','name','metadata','disabled','createdAt','updatedAt'],"
     "'properties':{"
     "'id':{'type':'string','pattern':'^[A-Za-z0-9_.:-]{1,128}$'},"
     "'name':{'type':'string','minLength':1,'maxLength':255},"
     "'metadata':{'type':'object',"
     "'additionalProperties':true,'description':'Yours: any JSON object up to 8192 bytes.'},"
     "'disabled':{'type':'boolean','description':'Its keys answer 401 and its deliveries are "
     "held (sent when it is enabled again).'},"
     "'createdAt':" S_TIME ",'updatedAt':" S_TIME "}}"},
    {"OrganizationCreate",
     "{'type':'object','properties':{"
     "'id':{'type':'string','pattern':'^[A-Za-z0-9_.:-]{1,128}$','description':'Default: "
     "generated (org_" ELLIPSIS ").'},"
     "'name':{'type':'string','minLength':1,'maxLength':255,'description':'Default: the "
     "id.'},"
     "'metadata':{'type':'object',"
     "'additionalProperties':true,'description':'At most 8192 bytes as compact JSON.'},"
     "'disabled':{'type':'boolean','default':false}}}"},
    {"OrganizationUpdate",
     "{'type':'object','properties':{"
     "'name':{'type':'string','minLength':1,'maxLength':255},"
     "'metadata':{'type':'object',"
     "'additionalProperties':true,'description':'Replaces the stored object.'},"
     "'disabled':{'type':'boolean'}}}"},
    {"OrganizationList", PAGED("organizations", "Organization")},
    {"ApiKey",
     "{'type':'object','required':['id','organizationId','name','prefix','scope','createdAt',"
     "'revokedAt'],'properties':{"
     "'id':" S_ID("key") ","
     "'organizationId':{'type':['string','null'],'description':'null for an admin key.'},"
     "'name':" S_STRN ","
     "'prefix':{'type':'string','description':'The first 8 characters of the key, to tell "
     "keys apart.'},"
     "'scope':" REF("Scope") ","
     "'key':{'type':'string','description':'The key itself: only in the answer that created "
     "it, never again.'},"
     "'createdAt':" S_TIME ",'revokedAt':" S_TIMEN "}}"},
    {"ApiKeyCreate",
     "{'type':'object','properties':{"
     "'name':{'type':'string','minLength':1,'maxLength':255},"
     "'scope':{'allOf':[" REF("Scope") "],'default':'full'}}}"},
    {"ApiKeyList",
     "{'type':'object','required':['apiKeys','total'],'properties':{"
     "'apiKeys':{'type':'array','items':" REF("ApiKey") "},'total':" S_COUNT "}}"},
    {"DeliverySearchResult",
     "{'type':'object','required':['deliveries','next','limit'],'properties':{"
     "'deliveries':{'type':'array','items':" REF("Delivery") "},"
     "'next':{'type':['string','null'],'description':'The cursor of the next page (pass it "
     "as cursor), null on the last page.'},"
     "'limit':{'type':'integer','minimum':1,'maximum':100}}}"},
    {"Percentiles",
     "{'type':'object','required':['p50','p95','p99'],'description':'Milliseconds, from the "
     "rollup histograms: within 16% of the true value; null when the bucket has no sample.',"
     "'properties':{'p50':{'type':['integer','null']},'p95':{'type':['integer','null']},"
     "'p99':{'type':['integer','null']}}}"},
    {"StatsCounts",
     "{'type':'object','required':['delivered','failed','givenUp'],'properties':{"
     "'delivered':" S_COUNT ",'failed':" S_COUNT ",'givenUp':" S_COUNT "}}"},
    {"StatsBucket",
     "{'type':'object','required':['start','delivered','failed','givenUp','attemptLatencyMs',"
     "'endToEndLatencyMs'],'properties':{'start':" S_TIME ","
     "'delivered':{'type':'integer','minimum':0,'description':'Attempts answered 2xx.'},"
     "'failed':{'type':'integer','minimum':0,'description':'Failed attempts that will be "
     "retried.'},"
     "'givenUp':{'type':'integer','minimum':0,'description':'Final failures.'},"
     "'attemptLatencyMs':" REF("Percentiles") ",'endToEndLatencyMs':" REF("Percentiles") "}}"},
    {"WebhookStats",
     "{'type':'object','required':['webhookId','interval','from','to','backlog',"
     "'backlogCapped','percentileErrorPct','buckets','totals'],'properties':{"
     "'webhookId':{'type':'string'},'interval':{'enum':['minute','hour','day']},"
     "'from':" S_TIME ",'to':" S_TIME ","
     "'backlog':{'type':'integer','minimum':0,'description':'Open (pending or retrying) "
     "deliveries now, counted up to 10,000.'},'backlogCapped':{'type':'boolean'},"
     "'percentileErrorPct':{'type':'integer'},"
     "'buckets':{'type':'array','maxItems':10000,'items':" REF("StatsBucket") "},"
     "'totals':" REF("StatsCounts") "}}"},
    {"OrgStatsRow",
     "{'type':'object','required':['webhookId','name','url','status','delivered','failed',"
     "'givenUp','successRate','lastAttemptAt','backlog','backlogCapped'],'properties':{"
     "'webhookId':{'type':'string'},'name':{'type':['string','null']},'url':{'type':'string'},"
     "'status':" REF("WebhookStatus") ",'delivered':" S_COUNT ",'failed':" S_COUNT ","
     "'givenUp':" S_COUNT ",'successRate':{'type':['number','null'],'minimum':0,'maximum':1,"
     "'description':'delivered / all attempts of the last 24 h; null without attempts.'},"
     "'lastAttemptAt':" S_TIMEN ",'backlog':" S_COUNT ",'backlogCapped':{'type':'boolean'}}}"},
    {"OrgStats",
     "{'type':'object','required':['since','data','more','next'],'properties':{"
     "'since':" S_TIME ",'data':{'type':'array','items':" REF("OrgStatsRow") "},"
     "'more':{'type':'boolean'},'next':{'type':['string','null'],'description':'Pass as "
     "`after` for the next page.'}}}"},
    {"PortalSessionCreate",
     "{'type':'object','properties':{"
     "'organizationId':{'type':'string','description':'With an admin key: the organization "
     "(or send X-Organization-Id). With an organization key: absent or its own.'},"
     "'scope':{'allOf':[" REF("Scope") "],'default':'full','description':'A read key mints "
     "read sessions only.'},"
     "'ttlSeconds':{'type':'integer','minimum':1,'maximum':86400,'default':3600},"
     "'webhookIds':{'type':'array','minItems':1,'maxItems':100,'items':" S_ID("wh") ","
     "'description':'Limit the session to these webhooks of the organization: it sees them "
     "and their deliveries only (the webhook list shows them alone; any other route of the "
     "organization answers 403). Default: every webhook.'}}}"},
    {"PortalSession",
     "{'type':'object','required':['id','organizationId','scope','token','expiresAt','url',"
     "'webhookIds'],"
     "'properties':{'id':" S_ID("ps") ",'organizationId':" S_STR ",'scope':" REF("Scope") ","
     "'token':{'type':'string','description':'The bearer token: only in this answer, never "
     "logged.'},"
     "'expiresAt':" S_TIME ","
     "'url':{'type':'string','description':'The dashboard page (BASE_URL + /api/webhook/ui/) "
     "with the token in the fragment (#token=…), never in a query string.'},"
     "'webhookIds':{'type':['array','null'],'items':" S_ID("wh") "}}}"},
    {"PortalSessionRevoked",
     "{'type':'object','required':['id','message'],'properties':{'id':" S_ID("ps") ","
     "'message':" S_STR "}}"},
    {"ApiKeyRevoked",
     "{'type':'object','required':['id','message'],'properties':{'id':" S_ID("key") ","
     "'message':" S_STR "}}"},
};
/* clang-format on */

/* clang-format off */
static const fragment parameters[] = {
    /* Path ids carry their pattern: it is what tells /v1/{id} from its literal siblings
     * (/v1/events, /v1/deliveries, ...), which no id matches (redocly.yaml, no-ambiguous-paths). */
    {"WebhookId", "{'name':'id','in':'path','required':true,'description':'A webhook id: wh_ "
                  "and 20 to 40 lowercase letters or digits (hookd makes 24).','schema':"
                  S_ID("wh") "}"},
    {"EventId", "{'name':'id','in':'path','required':true,'description':'An event id.',"
                "'schema':" S_ID("whev") "}"},
    {"DeliveryId", "{'name':'id','in':'path','required':true,'description':'A delivery id.',"
                   "'schema':" S_ID("whde") "}"},
    {"Page", "{'name':'page','in':'query','description':'Offset paging, kept for "
             "compatibility: pages must start within the first 1,000 items ((page - 1) * limit "
             "< 1000; deeper is a 422 that says to follow next). Not with a cursor (page 1 "
             "aside).','schema':{'type':'integer','minimum':1,'default':1}}"},
    {"Cursor", "{'name':'cursor','in':'query','description':'Keyset paging: the next of an "
               "earlier answer of the same list, unchanged. The page holds the items after "
               "that one, newest first; following next returns every item that existed when "
               "the walk began exactly once, whatever is added meanwhile. Anything else is a "
               "422 naming cursor.','schema':{'type':'string','pattern':'^[A-Za-z0-9_-]+$',"
               "'maxLength':223}}"},
    {"Limit", "{'name':'limit','in':'query','schema':{'type':'integer','minimum':1,"
              "'maximum':100,'default':10}}"},
    {"UiFile", "{'name':'file','in':'path','required':true,'description':'A file of the "
               "dashboard: index.html, its JavaScript modules and style sheet (an allow-list in "
               "src/api/ui.c); any other name is 404.','schema':{'type':'string',"
               "'pattern':'^[a-z]+[.](html|js|css)$'}}"},
    {"UiVendorFile", "{'name':'file','in':'path','required':true,'description':'A library "
                     "of the dashboard, from its npm package (preact, htm, uplot).','schema':"
                     "{'type':'string','enum':['preact.mjs','htm.mjs','uplot.js','uplot.css']}}"},
    {"WebhookStatusFilter", "{'name':'status','in':'query','description':'Only webhooks in "
                            "this status.','schema':" REF("WebhookStatus") "}"},
    {"DeliveryStatusFilter", "{'name':'status','in':'query','description':'Only deliveries "
                             "in this status.','schema':" REF("DeliveryStatus") "}"},
    {"EventTypeFilter", "{'name':'type','in':'query','description':'Only events of this exact "
                        "type.','schema':" REF("EventType") "}"},
    {"IdempotencyKey", "{'name':'Idempotency-Key','in':'header','description':'The same as "
                       "idempotencyKey in the body; if both are given they must be equal.',"
                       "'schema':{'type':'string','minLength':1,'maxLength':255}}"},
    {"OrganizationId", "{'name':'id','in':'path','required':true,'description':'An "
                       "organization id.','schema':{'type':'string','pattern':"
                       "'^[A-Za-z0-9_.:-]{1,128}$'}}"},
    {"ApiKeyId", "{'name':'keyId','in':'path','required':true,'description':'An API key id.',"
                 "'schema':" S_ID("key") "}"},
    {"SearchStatus", "{'name':'status','in':'query','schema':" REF("DeliveryStatus") "}"},
    {"SearchEventType", "{'name':'eventType','in':'query','schema':" REF("EventType") "}"},
    {"SearchWebhookId", "{'name':'webhookId','in':'query','schema':{'type':'string'}}"},
    {"SearchEventId", "{'name':'eventId','in':'query','description':'The deliveries of this "
                      "event.','schema':{'type':'string'}}"},
    {"SearchDeliveryId", "{'name':'deliveryId','in':'query','schema':{'type':'string'}}"},
    {"SearchIdempotencyKey", "{'name':'idempotencyKey','in':'query','description':'The "
                             "deliveries of the event ingested with this key.','schema':{"
                             "'type':'string','minLength':1,'maxLength':255}}"},
    {"SearchSince", "{'name':'since','in':'query','description':'Created at or after.',"
                    "'schema':{'type':'string','format':'date-time'}}"},
    {"SearchUntil", "{'name':'until','in':'query','description':'Created before.',"
                    "'schema':{'type':'string','format':'date-time'}}"},
    {"StatsFrom", "{'name':'from','in':'query','description':'Default: `to` less 24 h; "
                  "floored to the interval.','schema':{'type':'string','format':'date-time'}}"},
    {"StatsTo", "{'name':'to','in':'query','description':'Default: now; exclusive.',"
                "'schema':{'type':'string','format':'date-time'}}"},
    {"StatsInterval", "{'name':'interval','in':'query','description':'At most 10,000 buckets "
                      "between from and to (else 422).','schema':{'enum':['minute','hour',"
                      "'day'],'default':'hour'}}"},
    {"StatsLimit", "{'name':'limit','in':'query','schema':{'type':'integer','minimum':1,"
                   "'maximum':500,'default':100}}"},
    {"StatsAfter", "{'name':'cursor','in':'query','description':'The `next` of the previous "
                   "page (a webhook id).','schema':{'type':'string'}}"},
    {"PortalSessionId", "{'name':'id','in':'path','required':true,'description':'A portal "
                        "session id.','schema':" S_ID("ps") "}"},
    {"ApiKeyIdOnly", "{'name':'id','in':'path','required':true,'description':'An API key id.',"
                     "'schema':" S_ID("key") "}"},
    {"XOrganizationId", "{'name':'X-Organization-Id','in':'header','description':'With an "
                        "admin key only (required then, else 422): the organization to act "
                        "on; unknown: 404, disabled: 403. Ignored with an organization key.',"
                        "'schema':{'type':'string','pattern':'^[A-Za-z0-9_.:-]{1,128}$'}}"},
};
/* clang-format on */

/* The error answers an operation may list, by status. */
typedef struct error_resp {
    const char *status;
    const char *name;
    const char *desc;
    const char *example; /* fragment */
} error_resp;

/* clang-format off */
#define ERR_EXAMPLE(code, msg)                                                                 \
    "{'code':'" code "','message':'" msg "','why':'" ELLIPSIS "','fix':'" ELLIPSIS "'}"

static const error_resp error_resps[] = {
    {"400", "BadRequest", "Malformed JSON, a duplicate key or an empty body.",
     ERR_EXAMPLE("invalid_json", "malformed JSON: unexpected character")},
    {"401", "Unauthorized", "No API key, or an unknown or revoked one.",
     ERR_EXAMPLE("unauthorized", "missing API key")},
    {"403", "Forbidden", "forbidden: a read-scoped key on a route that changes something (or "
                         "on the key routes), an organization's key on an admin route, or an "
                         "admin key acting on a disabled organization.",
     ERR_EXAMPLE("forbidden", "a read-scoped key may not use POST /api/webhook/v1")},
    {"404", "NotFound", "No such id in your organization (another organization's ids included).",
     ERR_EXAMPLE("not_found", "webhook not found")},
    {"409", "Conflict", "The state forbids it: the webhook is not active.",
     ERR_EXAMPLE("conflict", "webhook wh_" ELLIPSIS " is paused, not active")},
    {"413", "PayloadTooLarge", "The body is over HOOKD_MAX_BODY_BYTES.",
     ERR_EXAMPLE("payload_too_large", "the request body is over the size limit")},
    {"415", "UnsupportedMediaType", "The body is not application/json.",
     ERR_EXAMPLE("unsupported_media_type", "Content-Type must be application/json")},
    {"422", "ValidationFailed", "A field failed validation; the message names it. Also "
                                "limit_exceeded (HOOKD_MAX_WEBHOOKS_PER_ORG, at create) and "
                                "delivery_loop (ingest of a hookd delivery).",
     ERR_EXAMPLE("validation_failed", "events is required: a non-empty array of event types")},
    {"429", "RateLimited", "Over HOOKD_INGEST_RATE_LIMIT events per second for the "
                           "organization, or (limit_exceeded) over HOOKD_MAX_DELIVERIES_PER_EVENT "
                           "or HOOKD_MAX_DELIVERIES_PER_BATCH: nothing was stored.",
     ERR_EXAMPLE("rate_limited", "ingest rate limit exceeded for your organization")},
    {"431", "HeaderTooLarge", "The request headers are over 16 KiB (a request line alone over "
                              "16 KiB: 414). Any route may answer it.",
     ERR_EXAMPLE("header_too_large", "the request headers are too large")},
    {"503", "Unavailable", "A dependency is down or overloaded; nothing was stored. Safe to "
                           "retry.",
     ERR_EXAMPLE("unavailable", "the store is unavailable")},
};
/* clang-format on */

/* ---- the operations ---------------------------------------------------------------------- */

typedef struct ok_resp {
    int status;
    const char *schema; /* a name in components/schemas, or an inline fragment ("{...}") */
    const char *desc;
} ok_resp;

typedef struct api_op {
    const char *method; /* "get", "post", ... */
    const char *path;   /* OpenAPI path template */
    const char *op_id;
    const char *tag;
    const char *summary;
    const char *desc;    /* CommonMark, or NULL */
    int auth;            /* enum hk_auth (api.h): NONE, ORG, METRICS, ADMIN, ORG_FULL */
    const char *params;  /* space-separated names in components/parameters */
    const char *body;    /* request body schema name, or NULL */
    int body_optional;   /* an empty body is taken as {} */
    const char *example; /* request body example (fragment), or NULL */
    const char *ctypes;  /* space-separated media types of the success body; NULL = JSON */
    ok_resp ok[2];
    const char *errors; /* space-separated statuses in `error_resps` */
} api_op;

/* clang-format off */
#define P "/api/webhook"
#define BODY_ERRORS "400 401 413 415 422 503"
#define INGEST_ERRORS "400 401 413 415 422 429 503"

static const api_op ops[] = {
    {.method = "get", .path = P "/health", .op_id = "getHealth", .tag = "Operations",
     .summary = "Health of hookd and its dependencies",
     .desc = "No API key. 503 names the failing check.",
     .ok = {{200, "Health", "Every dependency is up."},
            {503, "Health", "A dependency is down; its check says which."}},
     .errors = "431"},
    {.method = "get", .path = P "/health/live", .op_id = "getHealthLive", .tag = "Operations",
     .summary = "Liveness probe: the process answers",
     .desc = "No API key. Answered by the event loop without asking the store, queue or NATS: "
             "200 while hookd runs, also with a dependency down and while it drains at "
             "shutdown. A probe that gets no answer means the process is hung or gone.",
     .ok = {{200, "Liveness", "The process answers."}}, .errors = "431"},
    {.method = "get", .path = P "/health/ready", .op_id = "getHealthReady", .tag = "Operations",
     .summary = "Readiness probe: the store (and Redis, NATS where configured) are usable",
     .desc = "No API key. The checks and body of `/health`; 503 when one fails, naming it, and "
             "503 with status `draining` from SIGTERM/SIGINT until the listener closes, so a "
             "load balancer stops sending before the node exits.",
     .ok = {{200, "Health", "Ready: every dependency is up."},
            {503, "Health", "Not ready: a dependency is down (its check says which) or hookd "
                            "is draining."}},
     .errors = "431"},
    {.method = "get", .path = "/metrics", .op_id = "getMetrics", .tag = "Operations",
     .summary = "Prometheus metrics",
     .desc = "Events ingested, deliveries by status, attempts by outcome, latency histograms, "
             "queue depth, in flight, the store's size (`hookd_store_rows{table}`, "
             "`hookd_store_bytes`) and health (`hookd_store_up`). Open unless "
             "`HOOKD_METRICS_KEY` is set; then send it as a bearer token or `x-api-key`.",
     .auth = 2, .ctypes = "text/plain",
     .ok = {{200, NULL, "Prometheus text format 0.0.4."}}, .errors = "401"},
    {.method = "get", .path = P "/openapi", .op_id = "getApiDocsPage", .tag = "Docs",
     .summary = "This page: the interactive API docs",
     .desc = "Swagger UI on the OpenAPI document; plain HTML with a link to the document when "
             "Swagger UI's files are not installed.",
     .ctypes = "text/html", .ok = {{200, NULL, "An HTML page."}}, .errors = "431"},
    {.method = "get", .path = P "/openapi/json", .op_id = "getOpenApiDocument", .tag = "Docs",
     .summary = "The OpenAPI 3.1 document",
     .ok = {{200, "{'type':'object','additionalProperties':true}", "This document."}},
     .errors = "431"},
    {.method = "get", .path = P "/openapi/{file}", .op_id = "getApiDocsAsset", .tag = "Docs",
     .summary = "A file of Swagger UI",
     .desc = "Only the files the page uses are served, from the npm package swagger-ui-dist "
             "(`HOOKD_SWAGGER_UI_DIR`).",
     .params = "AssetFile", .ctypes = "text/css text/javascript image/png",
     .ok = {{200, NULL, "The file."}}, .errors = "404"},

    {.method = "get", .path = P "/ui", .op_id = "getDashboard", .tag = "Docs",
     .summary = "The dashboard (docs/DASHBOARD.md)",
     .desc = "Its page (index.html); sign in with an API key, or open a portal session's `url` "
             "(`#token=` in the fragment). Served with a strict Content-Security-Policy whose "
             "`frame-ancestors` is `HOOKD_PORTAL_ORIGINS`, an `ETag` and `Cache-Control: "
             "no-cache` (`If-None-Match` gets 304). 404 when its files are not installed "
             "(`HOOKD_UI_DIR`).",
     .ctypes = "text/html", .ok = {{200, NULL, "An HTML page."}}, .errors = "404"},
    {.method = "get", .path = P "/ui/{file}", .op_id = "getDashboardFile", .tag = "Docs",
     .summary = "A file of the dashboard",
     .desc = "Only the dashboard's own files are served (an allow-list), with the page's "
             "headers.",
     .params = "UiFile", .ctypes = "text/html text/javascript text/css",
     .ok = {{200, NULL, "The file."}}, .errors = "404"},
    {.method = "get", .path = P "/ui/vendor/{file}", .op_id = "getDashboardLibrary",
     .tag = "Docs", .summary = "A library of the dashboard",
     .desc = "From the npm packages preact, htm and uplot (installed beside the dashboard).",
     .params = "UiVendorFile", .ctypes = "text/javascript text/css",
     .ok = {{200, NULL, "The file."}}, .errors = "404"},
    {.method = "get", .path = P "/v1/whoami", .op_id = "whoami", .tag = "Tenancy",
     .summary = "The credential of this request",
     .desc = "What the dashboard asks first: the organization, whether the credential is an "
             "organization's key, an admin key (acting with `X-Organization-Id`) or a portal "
             "session, its scope, and the webhooks a limited session may see (`null`: all).",
     .auth = 1,
     .ok = {{200, "{'type':'object','required':['organizationId','kind','scope','webhookIds'],"
                  "'properties':{'organizationId':" S_STR ",'kind':{'type':'string','enum':"
                  "['key','admin','session']},'scope':{'type':'string','enum':['full','read']},"
                  "'webhookIds':{'type':['array','null'],'items':" S_ID("wh") "}}}",
             "The credential."}},
     .errors = "401 503"},

    {.method = "post", .path = P "/v1", .op_id = "createWebhook", .tag = "Webhooks",
     .summary = "Create a webhook",
     .desc = "The answer holds the plaintext `secret`: the only time it is shown.",
     .auth = 1, .body = "WebhookCreate",
     .example = "{'name':'Billing','url':'https://example.com/hooks/hookd','events':['email.*'],"
                "'customHeaders':{'X-Team':'billing'},'maxRetries':6}",
     .ok = {{201, "Webhook", "Created; `secret` is in plaintext, this once."}},
     .errors = BODY_ERRORS},
    {.method = "get", .path = P "/v1", .op_id = "listWebhooks", .tag = "Webhooks",
     .summary = "List webhooks", .desc = "Newest first (ties by id). Page with cursor/next.",
     .auth = 1, .params = "Page Cursor Limit WebhookStatusFilter",
     .ok = {{200, "WebhookList", "A page of webhooks, secrets masked."}},
     .errors = "401 422 503"},
    {.method = "get", .path = P "/v1/{id}", .op_id = "getWebhook", .tag = "Webhooks",
     .summary = "Read a webhook", .desc = "The secret is masked.",
     .auth = 1, .params = "WebhookId",
     .ok = {{200, "Webhook", "The webhook."}}, .errors = "401 404 503"},
    {.method = "patch", .path = P "/v1/{id}", .op_id = "updateWebhook", .tag = "Webhooks",
     .summary = "Change a webhook",
     .desc = "Any create field. `events` replaces the subscriptions; `status` may be `active`, "
             "`paused` or `disabled`; setting `active` resets `consecutiveFailures` and sends "
             "what was held. A new `secret` replaces the old one at once (rotate-secret keeps "
             "the old one for a grace period).",
     .auth = 1, .params = "WebhookId", .body = "WebhookUpdate", .example = "{'status':'paused'}",
     .ok = {{200, "Webhook", "The changed webhook."}},
     .errors = "400 401 404 413 415 422 503"},
    {.method = "delete", .path = P "/v1/{id}", .op_id = "deleteWebhook", .tag = "Webhooks",
     .summary = "Delete a webhook",
     .desc = "Soft delete: its pending and retrying deliveries end `failed` with "
             "\"webhook deleted\".",
     .auth = 1, .params = "WebhookId",
     .ok = {{200, "WebhookDeleted", "Deleted."}}, .errors = "401 404 503"},
    {.method = "post", .path = P "/v1/{id}/rotate-secret", .op_id = "rotateWebhookSecret",
     .tag = "Webhooks", .summary = "Rotate a webhook's secret",
     .desc = "A new secret (generated unless given), returned this once. Until "
             "`previousSecretExpiresAt` every delivery is signed with both the new and the old "
             "secret. The body may be empty.",
     .auth = 1, .params = "WebhookId", .body = "RotateSecretRequest", .body_optional = 1,
     .example = "{'graceSeconds':86400}",
     .ok = {{200, "Webhook",
             "The webhook with its new plaintext `secret` and `previousSecretExpiresAt`."}},
     .errors = "400 401 404 413 415 422 503"},
    {.method = "post", .path = P "/v1/{id}/rotate-signing-key", .op_id = "rotateWebhookSigningKey",
     .tag = "Webhooks", .summary = "Rotate a webhook's Ed25519 key pair",
     .desc = "A new key pair for the ed25519 scheme; the answer shows its `publicKey`. Until "
             "`previousPublicKeyExpiresAt` every delivery carries a v1a signature by the new "
             "key and one by the old key, in that order. The secret is not changed. The body "
             "may be empty.",
     .auth = 1, .params = "WebhookId", .body = "RotateKeyRequest", .body_optional = 1,
     .example = "{'graceSeconds':86400}",
     .ok = {{200, "Webhook", "The webhook with its new `publicKey` and `previousPublicKey`."}},
     .errors = "400 401 404 413 415 422 503"},
    {.method = "post", .path = P "/v1/sign-test-event", .op_id = "signTestEvent",
     .tag = "Webhooks", .summary = "Sign a test event without sending it",
     .desc = "Exactly what a delivery of that event to that webhook would send (custom "
             "headers, `excludeFields`, every signature with the live secrets, fresh ids), to "
             "test a receiver's verification. Nothing is stored or sent.",
     .auth = 1, .body = "SignTestEventRequest",
     .example = "{'webhookId':'wh_mc3v2k7q0a8f3k2j9x4b7n1p5r','event':'email.delivered',"
                "'payload':{'to':'a@example.com'}}",
     .ok = {{200, "SignedTestEvent", "The request a delivery would make."}},
     .errors = "400 401 404 413 415 422 503"},

    {.method = "post", .path = P "/v1/events", .op_id = "ingestEvent", .tag = "Events",
     .summary = "Ingest an event",
     .desc = "Answered only after the event and its deliveries are durably stored. A repeated "
             "idempotency key answers 200 with the first event's id and creates nothing. The "
             "type prefix `hookd.` is reserved for hookd's operational events: 422.",
     .auth = 1, .params = "IdempotencyKey", .body = "EventIngest",
     .example = "{'type':'email.delivered','data':{'emailId':'e_123','to':'a@example.com'},"
                "'idempotencyKey':'e_123:delivered'}",
     .ok = {{202, "IngestResult", "Stored, with `deliveries` deliveries."},
            {200, "IngestResult", "A duplicate: the first event, `duplicate` true."}},
     .errors = INGEST_ERRORS},
    {.method = "post", .path = P "/v1/events/batch", .op_id = "ingestEventBatch",
     .tag = "Events", .summary = "Ingest up to 1000 events",
     .desc = "One transaction: if any event is invalid, nothing is stored (422 names "
             "`events[i]`).",
     .auth = 1, .body = "EventBatch",
     .example = "{'events':[{'type':'email.delivered','data':{'n':1}},"
                "{'type':'email.bounced','data':{'n':2}}]}",
     .ok = {{202, "BatchResult", "Stored; one result per event, in order."}},
     .errors = INGEST_ERRORS},
    {.method = "post", .path = P "/v1/trigger", .op_id = "triggerEvent", .tag = "Events",
     .summary = "Trigger an event (manual)",
     .desc = "The seed system's manual trigger: an ingest with source `manual`.",
     .auth = 1, .params = "IdempotencyKey", .body = "TriggerRequest",
     .example = "{'event':'user.created','payload':{'userId':'u_1'}}",
     .ok = {{202, "IngestResult", "Stored."},
            {200, "IngestResult", "A duplicate idempotency key."}},
     .errors = INGEST_ERRORS},
    {.method = "get", .path = P "/v1/events", .op_id = "listEvents", .tag = "Events",
     .summary = "List events", .desc = "Newest first (ties by id). Page with cursor/next.",
     .auth = 1, .params = "Page Cursor Limit EventTypeFilter",
     .ok = {{200, "EventList", "A page of events."}}, .errors = "401 422 503"},
    {.method = "get", .path = P "/v1/events/{id}", .op_id = "getEvent", .tag = "Events",
     .summary = "Read an event", .desc = "With the ids and statuses of its deliveries.",
     .auth = 1, .params = "EventId",
     .ok = {{200, "Event", "The event."}}, .errors = "401 404 503"},

    {.method = "get", .path = P "/v1/{id}/deliveries", .op_id = "listDeliveries",
     .tag = "Deliveries", .summary = "List a webhook's deliveries",
     .desc = "Newest first (ties by id), each with its attempts. Page with cursor/next.",
     .auth = 1, .params = "WebhookId Page Cursor Limit DeliveryStatusFilter",
     .ok = {{200, "DeliveryList", "A page of deliveries."}}, .errors = "401 404 422 503"},
    {.method = "get", .path = P "/v1/deliveries/{id}", .op_id = "getDelivery",
     .tag = "Deliveries", .summary = "Read a delivery", .desc = "With all its attempts.",
     .auth = 1, .params = "DeliveryId",
     .ok = {{200, "Delivery", "The delivery."}}, .errors = "401 404 503"},
    {.method = "post", .path = P "/deliveries/{id}/retry", .op_id = "retryDelivery",
     .tag = "Deliveries", .summary = "Replay a delivery",
     .desc = "A new delivery of the same event (same event id, `replayOfDeliveryId` set), "
             "attempted at once. 409 when the webhook is not active.",
     .auth = 1, .params = "DeliveryId",
     .ok = {{202, "RetryResult", "The replay is stored and due now."}},
     .errors = "401 404 409 503"},
    {.method = "post", .path = P "/v1/deliveries/{id}/retry", .op_id = "retryDeliveryV1",
     .tag = "Deliveries", .summary = "Replay a delivery (under /v1)",
     .desc = "The same as `POST /api/webhook/deliveries/{id}/retry`.",
     .auth = 1, .params = "DeliveryId",
     .ok = {{202, "RetryResult", "The replay is stored and due now."}},
     .errors = "401 404 409 503"},
    {.method = "post", .path = P "/v1/{id}/recover", .op_id = "recoverDeliveries",
     .tag = "Deliveries", .summary = "Replay a webhook's failed deliveries",
     .desc = "Replays every `failed` delivery of the webhook created in [since, until). "
             "Calling it twice replays twice. 409 when the webhook is not active.",
     .auth = 1, .params = "WebhookId", .body = "RecoverRequest",
     .example = "{'since':'2026-01-31T00:00:00Z'}",
     .ok = {{202, "RecoverResult", "The replays are stored and due now."}},
     .errors = "400 401 404 409 413 415 422 503"},

    /* tenancy (orgs.c): admin routes answer 403 to an organization's key */
    {.method = "post", .path = P "/v1/organizations", .op_id = "createOrganization",
     .tag = "Tenancy", .summary = "Create an organization (admin key)",
     .desc = "All fields optional; a taken `id` answers 409.",
     .auth = HK_AUTH_ADMIN, .body = "OrganizationCreate", .body_optional = 1,
     .example = "{'id':'acme','name':'Acme Inc','metadata':{'plan':'pro'}}",
     .ok = {{201, "Organization", "Created."}}, .errors = "400 401 409 413 415 422 503"},
    {.method = "get", .path = P "/v1/organizations", .op_id = "listOrganizations",
     .tag = "Tenancy", .summary = "List organizations (admin key)",
     .desc = "Newest first; also those made by `hookd apikey create --org` and the bootstrap "
             "key.",
     .auth = HK_AUTH_ADMIN, .params = "Page Limit",
     .ok = {{200, "OrganizationList", "A page of organizations."}}, .errors = "401 422 503"},
    {.method = "get", .path = P "/v1/organizations/{id}", .op_id = "getOrganization",
     .tag = "Tenancy", .summary = "Read an organization (admin key)",
     .auth = HK_AUTH_ADMIN, .params = "OrganizationId",
     .ok = {{200, "Organization", "The organization."}}, .errors = "401 404 503"},
    {.method = "patch", .path = P "/v1/organizations/{id}", .op_id = "updateOrganization",
     .tag = "Tenancy", .summary = "Change or disable an organization (admin key)",
     .desc = "`disabled: true`: its keys answer 401 (at once on this node, within 10 s on "
             "others) and its deliveries are held; `false` sends what was held.",
     .auth = HK_AUTH_ADMIN, .params = "OrganizationId", .body = "OrganizationUpdate",
     .example = "{'disabled':true}",
     .ok = {{200, "Organization", "The changed organization."}},
     .errors = "400 401 404 413 415 422 503"},
    {.method = "get", .path = P "/v1/organizations/{id}/api-keys", .op_id = "listOrgApiKeys",
     .tag = "Tenancy", .summary = "List an organization's API keys (admin key)",
     .desc = "Revoked ones included; never the keys themselves.",
     .auth = HK_AUTH_ADMIN, .params = "OrganizationId",
     .ok = {{200, "ApiKeyList", "Its keys, oldest first."}}, .errors = "401 404 503"},
    {.method = "post", .path = P "/v1/organizations/{id}/api-keys", .op_id = "createOrgApiKey",
     .tag = "Tenancy", .summary = "Create an API key for an organization (admin key)",
     .desc = "The answer holds the key (`key`): the only time it is shown.",
     .auth = HK_AUTH_ADMIN, .params = "OrganizationId", .body = "ApiKeyCreate",
     .body_optional = 1, .example = "{'name':'billing backend','scope':'read'}",
     .ok = {{201, "ApiKey", "Created; `key` is shown this once."}},
     .errors = "400 401 404 413 415 422 503"},
    {.method = "delete", .path = P "/v1/organizations/{id}/api-keys/{keyId}",
     .op_id = "revokeOrgApiKey", .tag = "Tenancy",
     .summary = "Revoke an organization's API key (admin key)",
     .desc = "It stops at once on this node, within 10 s on the others.",
     .auth = HK_AUTH_ADMIN, .params = "OrganizationId ApiKeyId",
     .ok = {{200, "ApiKeyRevoked", "Revoked."}}, .errors = "401 404 503"},
    {.method = "get", .path = P "/v1/api-keys", .op_id = "listApiKeys", .tag = "Tenancy",
     .summary = "List your organization's API keys (full scope)",
     .auth = HK_AUTH_ORG_FULL,
     .ok = {{200, "ApiKeyList", "Its keys, oldest first."}}, .errors = "401 503"},
    {.method = "post", .path = P "/v1/api-keys", .op_id = "createApiKey", .tag = "Tenancy",
     .summary = "Create an API key of your organization (full scope)",
     .desc = "The answer holds the key (`key`): the only time it is shown.",
     .auth = HK_AUTH_ORG_FULL, .body = "ApiKeyCreate", .body_optional = 1,
     .example = "{'name':'dashboard','scope':'read'}",
     .ok = {{201, "ApiKey", "Created; `key` is shown this once."}},
     .errors = "400 401 413 415 422 503"},
    {.method = "delete", .path = P "/v1/api-keys/{id}", .op_id = "revokeApiKey",
     .tag = "Tenancy", .summary = "Revoke an API key of your organization (full scope)",
     .desc = "It stops at once on this node, within 10 s on the others.",
     .auth = HK_AUTH_ORG_FULL, .params = "ApiKeyIdOnly",
     .ok = {{200, "ApiKeyRevoked", "Revoked."}}, .errors = "401 404 503"},
    {.method = "get", .path = P "/v1/deliveries", .op_id = "searchDeliveries",
     .tag = "Deliveries", .summary = "Search your organization's deliveries",
     .desc = "Across every webhook (deleted ones included), newest first, each with its "
             "attempts; every filter given must hold. Keyset pages: pass `next` as `cursor` "
             "(a page never repeats or skips a delivery while new ones arrive).",
     .auth = HK_AUTH_ORG,
     .params = "Limit SearchStatus SearchEventType SearchWebhookId SearchEventId "
               "SearchDeliveryId SearchIdempotencyKey SearchSince SearchUntil Cursor",
     .ok = {{200, "DeliverySearchResult", "A page of deliveries."}}, .errors = "401 422 503"},
    {.method = "get", .path = P "/v1/stats", .op_id = "organizationStats",
     .tag = "Statistics", .summary = "Your organization's webhooks over the last 24 h",
     .desc = "Every webhook (not deleted) by id, with its attempts of the last 24 hours by "
             "outcome, success rate, last attempt and backlog. Read from the rollups.",
     .auth = HK_AUTH_ORG, .params = "StatsLimit StatsAfter",
     .ok = {{200, "OrgStats", "A page of webhooks."}}, .errors = "401 422 503"},
    {.method = "get", .path = P "/v1/{id}/stats", .op_id = "webhookStats",
     .tag = "Statistics", .summary = "A webhook's statistics",
     .desc = "Attempts by outcome and latency percentiles per minute, hour or day (every "
             "bucket, empty ones too), and the open backlog now. Read from the rollups the "
             "results batches write, kept for the retention period.",
     .auth = HK_AUTH_ORG, .params = "WebhookId StatsFrom StatsTo StatsInterval",
     .ok = {{200, "WebhookStats", "The buckets."}}, .errors = "401 404 422 503"},
    {.method = "post", .path = P "/v1/portal-sessions", .op_id = "createPortalSession",
     .tag = "Tenancy", .summary = "Mint a portal session for a customer",
     .desc = "A short-lived bearer token of one organization (stored hashed, shown once) and "
             "the URL of the dashboard page carrying it in the fragment. It works like a key of "
             "that organization within its `scope`, but never on key or session management. "
             "An admin key or an organization's full key mints; 409 for a disabled "
             "organization. With `webhookIds` it sees those webhooks and their deliveries "
             "only.",
     .auth = HK_AUTH_MINT, .body = "PortalSessionCreate", .body_optional = 1,
     .example = "{'organizationId':'acme','scope':'read','ttlSeconds':3600}",
     .ok = {{201, "PortalSession", "Minted; `token` is shown this once."}},
     .errors = "400 401 404 409 413 415 422 503"},
    {.method = "delete", .path = P "/v1/portal-sessions/{id}", .op_id = "revokePortalSession",
     .tag = "Tenancy", .summary = "Revoke a portal session (full scope)",
     .desc = "It stops at once on this node, within 10 s on the others.",
     .auth = HK_AUTH_ORG_FULL, .params = "PortalSessionId",
     .ok = {{200, "PortalSessionRevoked", "Revoked."}}, .errors = "401 404 503"},
};
/* clang-format on */

static const char *const tags[][2] = {
    {"Webhooks", "Endpoints that receive your events."},
    {"Events", "Events in, and what became of them."},
    {"Deliveries", "Each event sent to each webhook, its attempts, and replays."},
    {"Operations", "Health and metrics (no API key)."},
    {"Docs", "This documentation and the dashboard (no API key)."},
    {"Tenancy", "Organizations and their API keys (admin keys), and an organization's own "
                "keys."},
};

/* Swagger UI's files that are served; nothing else under /openapi/ is. */
typedef struct asset {
    const char *name;
    const char *ctype;
} asset;

static const asset assets[] = {
    {"swagger-ui.css", "text/css; charset=utf-8"},
    {"swagger-ui-bundle.js", "text/javascript; charset=utf-8"},
    {"favicon-32x32.png", "image/png"},
    {"favicon-16x16.png", "image/png"},
};

/* ---- building the document ---------------------------------------------------------------- */

/* Writes a fragment (' for ") as a JSON value. */
static void put_frag(hk_jw *w, const char *sq)
{
    hk_buf b;
    hk_buf_init(&b, HK_BUF_UNLIMITED);
    hk_buf_puts(&b, sq);
    for (size_t i = 0; i < b.len; i++)
        if (b.data[i] == '\'') b.data[i] = '"';
    hk_jw_raw(w, b.data, b.len);
    hk_buf_free(&b);
}

static void put_ref(hk_jw *w, const char *section, const char *name)
{
    char ref[160];
    snprintf(ref, sizeof ref, "#/components/%s/%s", section, name);
    hk_jw_obj_open(w);
    hk_jw_kstr(w, "$ref", ref);
    hk_jw_obj_close(w);
}

/* Copies the next space-separated word of s into out; returns the rest, or NULL at the end. */
static const char *next_word(const char *s, char *out, size_t n)
{
    if (!s) return NULL;
    while (*s == ' ') s++;
    if (!*s) return NULL;
    size_t len = strcspn(s, " ");
    hk_strlcpy(out, s, len + 1 < n ? len + 1 : n);
    return s + len;
}

/* 1 if the space-separated list has the word w. */
static int has_word(const char *list, const char *w)
{
    char word[64];
    for (const char *p = list; (p = next_word(p, word, sizeof word));)
        if (strcmp(word, w) == 0) return 1;
    return 0;
}

static const error_resp *find_error(const char *status)
{
    for (size_t i = 0; i < HK_ARRAY_LEN(error_resps); i++)
        if (strcmp(error_resps[i].status, status) == 0) return &error_resps[i];
    return NULL;
}

static void put_ok(hk_jw *w, const api_op *op, const ok_resp *r)
{
    char status[8], ctype[64];
    snprintf(status, sizeof status, "%d", r->status);
    hk_jw_key(w, status);
    hk_jw_obj_open(w);
    hk_jw_kstr(w, "description", r->desc);
    hk_jw_key(w, "content");
    hk_jw_obj_open(w);
    if (!op->ctypes) {
        hk_jw_key(w, "application/json");
        hk_jw_obj_open(w);
        hk_jw_key(w, "schema");
        if (r->schema && r->schema[0] == '{')
            put_frag(w, r->schema);
        else
            put_ref(w, "schemas", r->schema);
        hk_jw_obj_close(w);
    } else {
        for (const char *p = op->ctypes; (p = next_word(p, ctype, sizeof ctype));) {
            hk_jw_key(w, ctype);
            hk_jw_obj_open(w);
            hk_jw_key(w, "schema");
            put_frag(w, "{'type':'string'}");
            hk_jw_obj_close(w);
        }
    }
    hk_jw_obj_close(w);
    hk_jw_obj_close(w);
}

static void put_op(hk_jw *w, const api_op *op)
{
    char word[64];
    hk_jw_key(w, op->method);
    hk_jw_obj_open(w);
    hk_jw_kstr(w, "operationId", op->op_id);
    hk_jw_key(w, "tags");
    hk_jw_arr_open(w);
    hk_jw_str(w, op->tag);
    hk_jw_arr_close(w);
    hk_jw_kstr(w, "summary", op->summary);
    if (op->desc) hk_jw_kstr(w, "description", op->desc);
    if (op->auth == 0) {
        hk_jw_key(w, "security");
        put_frag(w, "[]");
    } else if (op->auth == 2) {
        hk_jw_key(w, "security");
        put_frag(w, "[{},{'bearerAuth':[]},{'apiKey':[]}]");
    }
    int org_route = op->auth == HK_AUTH_ORG || op->auth == HK_AUTH_ORG_FULL;
    if (op->params || org_route) {
        hk_jw_key(w, "parameters");
        hk_jw_arr_open(w);
        for (const char *p = op->params; (p = next_word(p, word, sizeof word));)
            put_ref(w, "parameters", word);
        if (org_route) put_ref(w, "parameters", "XOrganizationId"); /* admin keys */
        hk_jw_arr_close(w);
    }
    if (op->body) {
        hk_jw_key(w, "requestBody");
        hk_jw_obj_open(w);
        hk_jw_kbool(w, "required", !op->body_optional);
        hk_jw_key(w, "content");
        hk_jw_obj_open(w);
        hk_jw_key(w, "application/json");
        hk_jw_obj_open(w);
        hk_jw_key(w, "schema");
        put_ref(w, "schemas", op->body);
        if (op->example) {
            hk_jw_key(w, "example");
            put_frag(w, op->example);
        }
        hk_jw_obj_close(w);
        hk_jw_obj_close(w);
        hk_jw_obj_close(w);
    }
    hk_jw_key(w, "responses");
    hk_jw_obj_open(w);
    for (size_t i = 0; i < HK_ARRAY_LEN(op->ok) && op->ok[i].status; i++) put_ok(w, op, &op->ok[i]);
    for (const char *p = op->errors; (p = next_word(p, word, sizeof word));) {
        const error_resp *e = find_error(word);
        if (!e) {
            HK_LOG(HK_LOG_ERROR, "openapi.unknown_status", HK_LS("status", word));
            continue;
        }
        hk_jw_key(w, e->status);
        put_ref(w, "responses", e->name);
    }
    /* every route with a key: 403 (scope, role); an organization's route: 422 (an admin key
     * without X-Organization-Id) */
    if (op->auth == HK_AUTH_ORG || op->auth == HK_AUTH_ORG_FULL || op->auth == HK_AUTH_ADMIN ||
        op->auth == HK_AUTH_MINT) {
        hk_jw_key(w, "403");
        put_ref(w, "responses", "Forbidden");
        if ((op->auth == HK_AUTH_ORG || op->auth == HK_AUTH_ORG_FULL) &&
            !has_word(op->errors, "422")) {
            hk_jw_key(w, "422");
            put_ref(w, "responses", "ValidationFailed");
        }
    }
    hk_jw_obj_close(w);
    hk_jw_obj_close(w);
}

static void put_components(hk_jw *w)
{
    hk_jw_key(w, "components");
    hk_jw_obj_open(w);

    hk_jw_key(w, "securitySchemes");
    put_frag(w, "{'apiKey':{'type':'apiKey','in':'header','name':'x-api-key','description':"
                "'An API key (hookd apikey create --org ORG). It scopes every route to its "
                "organization. An admin key (hookd apikey create --admin) belongs to none: it "
                "manages organizations and acts on one with X-Organization-Id.'},"
                "'bearerAuth':{'type':'http','scheme':'bearer','description':'The same API "
                "key, as Authorization: Bearer KEY.'}}");

    hk_jw_key(w, "parameters");
    hk_jw_obj_open(w);
    for (size_t i = 0; i < HK_ARRAY_LEN(parameters); i++) {
        hk_jw_key(w, parameters[i].name);
        put_frag(w, parameters[i].json);
    }
    hk_jw_key(w, "AssetFile");
    hk_jw_obj_open(w);
    hk_jw_kstr(w, "name", "file");
    hk_jw_kstr(w, "in", "path");
    hk_jw_kbool(w, "required", 1);
    hk_jw_key(w, "schema");
    hk_jw_obj_open(w);
    hk_jw_kstr(w, "type", "string");
    hk_jw_key(w, "enum");
    hk_jw_arr_open(w);
    for (size_t i = 0; i < HK_ARRAY_LEN(assets); i++) hk_jw_str(w, assets[i].name);
    hk_jw_arr_close(w);
    hk_jw_obj_close(w);
    hk_jw_obj_close(w);
    hk_jw_obj_close(w);

    hk_jw_key(w, "responses");
    hk_jw_obj_open(w);
    for (size_t i = 0; i < HK_ARRAY_LEN(error_resps); i++) {
        const error_resp *e = &error_resps[i];
        hk_jw_key(w, e->name);
        hk_jw_obj_open(w);
        hk_jw_kstr(w, "description", e->desc);
        if (strcmp(e->status, "401") == 0) {
            hk_jw_key(w, "headers");
            put_frag(w, "{'WWW-Authenticate':{'schema':{'type':'string','const':'Bearer'}}}");
        }
        hk_jw_key(w, "content");
        hk_jw_obj_open(w);
        hk_jw_key(w, "application/json");
        hk_jw_obj_open(w);
        hk_jw_key(w, "schema");
        put_ref(w, "schemas", "Error");
        hk_jw_key(w, "example");
        put_frag(w, e->example);
        hk_jw_obj_close(w);
        hk_jw_obj_close(w);
        hk_jw_obj_close(w);
    }
    hk_jw_obj_close(w);

    hk_jw_key(w, "schemas");
    hk_jw_obj_open(w);
    for (size_t i = 0; i < HK_ARRAY_LEN(schemas); i++) {
        hk_jw_key(w, schemas[i].name);
        put_frag(w, schemas[i].json);
    }
    hk_jw_obj_close(w);

    hk_jw_obj_close(w);
}

static void build_document(hk_buf *out)
{
    hk_jw jw, *w = &jw;
    hk_jw_init(w, out);
    hk_jw_obj_open(w);
    hk_jw_kstr(w, "openapi", "3.1.0");
    hk_jw_key(w, "info");
    hk_jw_obj_open(w);
    hk_jw_kstr(w, "title", "hookd");
    hk_jw_kstr(w, "version", HK_VERSION);
    hk_jw_kstr(w, "summary",
               "Webhook delivery: events in, signed HTTP POSTs out, retried "
               "until the endpoint takes them.");
    hk_jw_kstr(w, "description",
               "Every route but health, metrics and these docs needs an API key, as "
               "`x-api-key: KEY` or `Authorization: Bearer KEY`; a key sees and changes only "
               "its organization's data (another organization's ids answer 404). Errors are "
               "JSON `{code, message, why, fix}` with the right status, never HTML.");
    hk_jw_obj_close(w);
    /* relative: the hookd that serves this document, whatever name it is reached by */
    hk_jw_key(w, "servers");
    put_frag(w, "[{'url':'/','description':'The hookd that serves this document.'}]");
    hk_jw_key(w, "tags");
    hk_jw_arr_open(w);
    for (size_t i = 0; i < HK_ARRAY_LEN(tags); i++) {
        hk_jw_obj_open(w);
        hk_jw_kstr(w, "name", tags[i][0]);
        hk_jw_kstr(w, "description", tags[i][1]);
        hk_jw_obj_close(w);
    }
    hk_jw_arr_close(w);
    hk_jw_key(w, "security");
    put_frag(w, "[{'apiKey':[]},{'bearerAuth':[]}]");

    hk_jw_key(w, "paths");
    hk_jw_obj_open(w);
    for (size_t i = 0; i < HK_ARRAY_LEN(ops); i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++) seen = strcmp(ops[j].path, ops[i].path) == 0;
        if (seen) continue; /* written with the first operation of its path */
        hk_jw_key(w, ops[i].path);
        hk_jw_obj_open(w);
        for (size_t j = i; j < HK_ARRAY_LEN(ops); j++)
            if (strcmp(ops[j].path, ops[i].path) == 0) put_op(w, &ops[j]);
        hk_jw_obj_close(w);
    }
    hk_jw_obj_close(w);

    put_components(w);
    hk_jw_obj_close(w);

    hk_jdoc check = {0};
    if (hk_jw_error(w) ||
        hk_json_parse(&check, out->data, out->len, (uint32_t)(out->len / 2 + 16), 64))
        HK_LOG(HK_LOG_ERROR, "openapi.invalid", HK_LS("err", check.err[0] ? check.err : "write"));
    hk_json_free(&check);
}

static const hk_buf *document(void)
{
    static hk_buf doc;
    static int built;
    if (!built) {
        hk_buf_init(&doc, HK_BUF_UNLIMITED);
        build_document(&doc);
        built = 1;
    }
    return &doc;
}

void hk_h_openapi_json(hk_call *c)
{
    const hk_buf *doc = document();
    hk_call_raw_static(c, 200, "application/json", NO_CACHE, doc->data, doc->len);
}

/* ---- Swagger UI's files ------------------------------------------------------------------- */

static int has_ui(const char *dir)
{
    char path[PATH_MAX];
    struct stat st;
    int n = snprintf(path, sizeof path, "%s/swagger-ui-bundle.js", dir);
    return n > 0 && (size_t)n < sizeof path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The directory Swagger UI's files are read from, or NULL. Once found it is kept. */
static const char *ui_dir(const hk_config *cfg)
{
    static char found[PATH_MAX];
    if (found[0]) return found;
    if (cfg->swagger_ui_dir && cfg->swagger_ui_dir[0]) {
        if (!has_ui(cfg->swagger_ui_dir)) return NULL;
        hk_strlcpy(found, cfg->swagger_ui_dir, sizeof found);
        return found;
    }
    char exe[PATH_MAX], cand[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            int m = snprintf(cand, sizeof cand, "%s/../node_modules/swagger-ui-dist", exe);
            if (m > 0 && (size_t)m < sizeof cand && has_ui(cand) && realpath(cand, found))
                return found;
            /* installed: <prefix>/bin/hookd, <prefix>/share/hookd/swagger-ui-dist */
            m = snprintf(cand, sizeof cand, "%s/../share/hookd/swagger-ui-dist", exe);
            if (m > 0 && (size_t)m < sizeof cand && has_ui(cand) && realpath(cand, found))
                return found;
        }
    }
    if (has_ui("node_modules/swagger-ui-dist") && realpath("node_modules/swagger-ui-dist", found))
        return found;
    found[0] = '\0';
    return NULL;
}

/* Reads a regular file of at most ASSET_MAX_BYTES whole; NULL on any failure. */
static char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > ASSET_MAX_BYTES) {
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *data = hk_malloc(size + 1);
    while (got < size) {
        ssize_t r = read(fd, data + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != size) {
        free(data);
        return NULL;
    }
    *len = size;
    return data;
}

void hk_h_openapi_asset(hk_call *c)
{
    static struct {
        char *data;
        size_t len;
    } cache[HK_ARRAY_LEN(assets)];
    size_t i = 0;
    while (i < HK_ARRAY_LEN(assets) && strcmp(assets[i].name, c->params[0]) != 0) i++;
    if (i == HK_ARRAY_LEN(assets)) {
        hk_call_error(c, 404, "not_found", "no such file",
                      "Only Swagger UI's own files are served under " DOCS "/.",
                      "See " DOCS " for the API docs.");
        return;
    }
    if (!cache[i].data) {
        const char *dir = ui_dir(c->api->cfg);
        char path[PATH_MAX];
        int n = dir ? snprintf(path, sizeof path, "%s/%s", dir, assets[i].name) : -1;
        if (n > 0 && (size_t)n < sizeof path) cache[i].data = read_file(path, &cache[i].len);
        if (!cache[i].data) {
            hk_call_error(c, 404, "not_found", "Swagger UI's files are not installed",
                          "hookd did not find the npm package swagger-ui-dist.",
                          "Run scripts/setup.sh, or set HOOKD_SWAGGER_UI_DIR to the directory "
                          "holding swagger-ui-bundle.js.");
            return;
        }
    }
    hk_call_raw_static(c, 200, assets[i].ctype, ASSET_CACHE, cache[i].data, cache[i].len);
}

/* ---- the page ----------------------------------------------------------------------------- */

static void html_text(hk_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            hk_buf_puts(b, "&amp;");
            break;
        case '<':
            hk_buf_puts(b, "&lt;");
            break;
        case '>':
            hk_buf_puts(b, "&gt;");
            break;
        case '"':
            hk_buf_puts(b, "&quot;");
            break;
        default:
            hk_buf_putc(b, *s);
        }
    }
}

/* The routes as an HTML table: the page's content without Swagger UI. */
static void html_routes(hk_buf *b)
{
    hk_buf_puts(b, "<table class=\"hk-routes\">\n<tr><th>Method</th><th>Path</th>"
                   "<th>Does</th><th>Auth</th></tr>\n");
    for (size_t i = 0; i < HK_ARRAY_LEN(ops); i++) {
        hk_buf_puts(b, "<tr><td>");
        for (const char *m = ops[i].method; *m; m++) hk_buf_putc(b, (char)(*m - 'a' + 'A'));
        hk_buf_puts(b, "</td><td><code>");
        html_text(b, ops[i].path);
        hk_buf_puts(b, "</code></td><td>");
        html_text(b, ops[i].summary);
        hk_buf_puts(b, "</td><td>");
        hk_buf_puts(b, ops[i].auth == 1   ? "API key"
                       : ops[i].auth == 2 ? "metrics key, if set"
                                          : "none");
        hk_buf_puts(b, "</td></tr>\n");
    }
    hk_buf_puts(b, "</table>\n");
}

#define PAGE_HEAD                                                                                  \
    "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"                      \
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"                   \
    "<title>hookd API</title>\n"                                                                   \
    "<style>body{margin:0;font-family:sans-serif}.hk-top{margin:16px 20px;font-size:14px}"         \
    ".hk-routes{margin:0 20px;border-collapse:collapse;font-size:14px}"                            \
    ".hk-routes td,.hk-routes th{border:1px solid #ccc;padding:4px 8px;text-align:left}"           \
    "</style>\n"

#define JSON_LINK                                                                                  \
    "<p class=\"hk-top\">hookd API: the OpenAPI 3.1 document is at <a href=\"" DOCS                \
    "/json\">" DOCS "/json</a>.</p>\n"

static void build_page(hk_buf *b, int with_ui)
{
    hk_buf_puts(b, PAGE_HEAD);
    if (with_ui)
        hk_buf_puts(b, "<link rel=\"icon\" type=\"image/png\" sizes=\"32x32\" href=\"" DOCS
                       "/favicon-32x32.png\">\n"
                       "<link rel=\"icon\" type=\"image/png\" sizes=\"16x16\" href=\"" DOCS
                       "/favicon-16x16.png\">\n"
                       "<link rel=\"stylesheet\" href=\"" DOCS "/swagger-ui.css\">\n");
    hk_buf_puts(b, "</head>\n<body>\n" JSON_LINK);
    if (with_ui) {
        hk_buf_puts(b, "<div id=\"swagger-ui\"></div>\n<noscript>\n");
        html_routes(b);
        hk_buf_puts(b, "</noscript>\n"
                       "<script src=\"" DOCS "/swagger-ui-bundle.js\" charset=\"utf-8\"></script>\n"
                       "<script>\n"
                       "window.addEventListener(\"load\", function () {\n"
                       "  window.ui = SwaggerUIBundle({\n"
                       "    url: \"" DOCS "/json\",\n"
                       "    dom_id: \"#swagger-ui\",\n"
                       "    deepLinking: true,\n"
                       "    persistAuthorization: true,\n"
                       "    docExpansion: \"list\",\n"
                       "    defaultModelsExpandDepth: 0\n"
                       "  });\n"
                       "});\n"
                       "</script>\n");
    } else {
        hk_buf_puts(b, "<p class=\"hk-top\">The interactive view needs Swagger UI's files (npm "
                       "package swagger-ui-dist), which this server did not find: run "
                       "scripts/setup.sh, or set HOOKD_SWAGGER_UI_DIR to the directory holding "
                       "swagger-ui-bundle.js. The routes:</p>\n");
        html_routes(b);
    }
    hk_buf_puts(b, "</body>\n</html>\n");
}

void hk_h_openapi_page(hk_call *c)
{
    static hk_buf pages[2]; /* [0] without Swagger UI, [1] with it */
    int with_ui = ui_dir(c->api->cfg) != NULL;
    hk_buf *b = &pages[with_ui];
    if (!b->len) {
        hk_buf_init(b, HK_BUF_UNLIMITED);
        build_page(b, with_ui);
    }
    hk_call_raw_static(c, 200, "text/html; charset=utf-8",
                       NO_CACHE "Content-Security-Policy: default-src 'self'; script-src 'self' "
                                "'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
                                "img-src 'self' data:; frame-ancestors 'none'\r\n",
                       b->data, b->len);
}
