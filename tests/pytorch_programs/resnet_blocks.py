# A small CIFAR-shaped ResNet built from torchvision-style BasicBlocks (3x3 convs,
# BatchNorm, identity or 1x1-conv shortcut), trained a few steps, then evaluated.
import math

import numpy as np
import torch
import torch.nn as nn


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=10):
        super().__init__()
        self.inplanes = 8
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, 8, layers[0])
        self.layer2 = self._make_layer(block, 16, layers[1], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


torch.manual_seed(0)
model = ResNet(BasicBlock, [1, 1])
rng = np.random.default_rng(0)
with torch.no_grad():
    for name, p in model.named_parameters():
        if p.dim() > 1:   # conv and linear weights; BatchNorm keeps (1, 0)
            p.copy_(torch.from_numpy(rng.normal(0, math.sqrt(2.0 / p[0].numel()), p.shape).astype(np.float32)))
        elif name == "fc.bias":
            p.zero_()
print("parameters:", sum(p.numel() for p in model.parameters()))
print("buffers:", [name for name, _ in model.named_buffers()][:4])

images = torch.from_numpy(rng.standard_normal((16, 3, 16, 16)).astype(np.float32))
labels = torch.from_numpy(rng.integers(0, 10, 16))

criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
model.train()
for step in range(6):
    optimizer.zero_grad()
    outputs = model(images)
    loss = criterion(outputs, labels)
    loss.backward()
    optimizer.step()
    _, predicted = outputs.max(1)
    print(f"step {step} loss {loss.item():.4f} acc {predicted.eq(labels).sum().item()}/{labels.size(0)}")

model.eval()
with torch.no_grad():
    logits = model(images)
print(f"eval loss {criterion(logits, labels).item():.4f}")
print(f"running_mean[:3] {[round(v, 4) for v in model.bn1.running_mean[:3].tolist()]}")
print("num_batches_tracked", model.bn1.num_batches_tracked.item())
