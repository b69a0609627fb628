// Lambda@Edge (nodejs20.x, CommonJS, callback style), origin-request: send
// viewers from Germany to /de/..., from the CloudFront-Viewer-Country header
// CloudFront adds for origin-facing functions when a policy asks for it.
'use strict';

exports.handler = (event, context, callback) => {
    const request = event.Records[0].cf.request;
    const country = request.headers['cloudfront-viewer-country'];
    if (country && country[0].value === 'DE' && !request.uri.startsWith('/de/')) {
        console.log(`redirecting ${request.uri} for DE`);
        callback(null, {
            status: '302',
            statusDescription: 'Found',
            headers: { location: [{ key: 'Location', value: `/de${request.uri}` }] },
        });
        return;
    }
    callback(null, request);
};
