// CloudFront Function (cloudfront-js-1.0), viewer-request: serve folder indexes.
//
// "/docs/" and "/docs" both fetch "/docs/index.html"; a path with a file
// extension goes through unchanged. The viewer's URL does not change: this
// rewrites what CloudFront asks the origin (and caches) for.
function handler(event) {
    var request = event.request;
    var uri = request.uri;
    if (uri.endsWith('/')) {
        request.uri = uri + 'index.html';
    } else if (uri.split('/').pop().indexOf('.') === -1) {
        request.uri = uri + '/index.html';
    }
    return request;
}
