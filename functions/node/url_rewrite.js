// Lambda@Edge (nodejs20.x, CommonJS, async), origin-request: folder indexes,
// "/docs/" and "/docs" fetch "/docs/index.html" from the origin.
'use strict';

exports.handler = async (event) => {
    const request = event.Records[0].cf.request;
    if (request.uri.endsWith('/')) {
        request.uri += 'index.html';
    } else if (!request.uri.split('/').pop().includes('.')) {
        request.uri += '/index.html';
    }
    return request;
};
