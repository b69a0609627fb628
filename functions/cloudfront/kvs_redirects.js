// CloudFront Function (cloudfront-js-2.0), viewer-request: redirects kept in a
// key value store (./redirects.json, in the format CloudFront imports from):
// the key is the old path, the value the new one. Paths not in the store go on.
import cf from 'cloudfront';

const kvs = cf.kvs();

async function handler(event) {
    const request = event.request;
    if (!(await kvs.exists(request.uri))) {
        return request;
    }
    const target = await kvs.get(request.uri);
    console.log(`redirect ${request.uri} -> ${target}`);
    return {
        statusCode: 301,
        statusDescription: 'Moved Permanently',
        headers: { location: { value: target } },
    };
}
